import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { endSoon } from '../connection/end-soon.js';
import { pastRolledBack, quietPoint, withOwnWrites } from '../connection/quiet-since.js';
import type { ServerIdentity } from '../guard/server-identity.js';
import {
  baselineFile,
  captureBaseline,
  captureCatalogs,
  readBaseline,
  unchangedChecksums,
  unchangedStructure,
  writeBaseline,
  type BaselineState,
  type CatalogState,
  type ProductionBaseline,
  type Proof,
} from '../mirror/production-baseline.js';
import { parallelSessions } from '../mirror/mirror-session.js';
import { pgtwinVersion } from '../mirror/pgtwin-version.js';
import { tableChecksums, type TableChecksum } from '../mirror/table-checksum.js';
import { readStructure } from '../structure/read-structure.js';
import { selectionFromConfig } from '../structure/schema-selection.js';
import { structureFingerprint } from '../structure/structure-fingerprint.js';
import { SNAPSHOT_FORMAT, type StructureSnapshot } from '../structure/structure-snapshot.js';
import type { Logger } from '../util/logger.js';

/** Production's structure with the state of the catalogs it was read from (see {@link readStructureAndCatalogs}). */
export interface StructureReading {
  snapshot: StructureSnapshot;
  catalogs: CatalogState | undefined;
}

/** Where the fingerprint takes production's structure from. */
export interface ProductionStructure {
  /** A session on production with no transaction open, to prove the structure unchanged on. */
  readonly session: pg.ClientBase;
  /** Reads the structure (once: the build takes the same reading). */
  read(): Promise<StructureReading>;
}

/**
 * Production's structure read on `session` at most once, with the state of the catalogs it was read from
 * (in the same snapshot), which lets a later run prove the structure unchanged instead of reading it again.
 */
export function productionStructure(session: pg.ClientBase, config: ResolvedConfig): ProductionStructure {
  let reading: Promise<StructureReading> | undefined;
  const read = async (): Promise<StructureReading> => {
    let catalogs: CatalogState | undefined;
    const snapshot = await readStructure(session, selectionFromConfig(config), {
      inSnapshot: async (client) => {
        catalogs = await captureCatalogs(client, structureReader(config));
      },
    });
    return { snapshot, catalogs };
  };
  return {
    session,
    read: () => {
      if (!reading) {
        reading = read();
        // Its readers get the failure; this keeps one that ends first from leaving it unhandled.
        reading.catch(() => undefined);
      }
      return reading;
    },
  };
}

/**
 * What the template fingerprint takes from production: the structure's fingerprint and the mirrored tables'
 * exact checksums. What the previous reading found (kept in the project's `node_modules/.cache/pgtwin`) is
 * taken again when production provably is the same since: for the structure, no catalog row written since
 * (`unchangedStructure`); for the rows, none written since, the same row counts and the same structure
 * (`unchangedChecksums`); both on the same server and timeline. Else the structure is read and every row
 * hashed, over read-only sessions sharing one snapshot, and that reading is kept for the next run. `fresh`:
 * read and hash regardless (`PGTWIN_REBUILD`). Proven checksums come with `recheck`, which proves them again
 * in the snapshot a build copies from: the rows proven unchanged a moment ago may have changed since.
 */
export async function readProductionFingerprint(
  config: ResolvedConfig,
  source: ProductionStructure,
  options: {
    fresh?: boolean;
    logger?: Logger;
    /** The snapshot to hash the rows in when they are hashed (the one a build will copy from). */
    snapshot?: () => Promise<string | undefined>;
  } = {},
): Promise<{
  structure: string;
  data: Record<string, TableChecksum>;
  proofs: ProductionProofs | undefined;
  /**
   * With checksums proven rather than hashed: proves them again on `client` (no transaction open) in
   * `snapshot`, exported on production, hashing the rows there when the proof no longer holds; returns why
   * they differ, if they do.
   */
  recheck?: (client: pg.ClientBase, snapshot: string) => Promise<string | undefined>;
}> {
  const openSession = () => connect(config.production, 'production');
  const file = baselineFile(config.rootDir, config.production);
  const opening = openSession();
  opening.catch(() => undefined);
  const previous = options.fresh ? undefined : await readBaseline(file);
  const structure = readStructureFingerprint(config, source, previous, options.logger);
  structure.catch(() => undefined);
  const digest = structure.then(({ digest }) => digest);
  digest.catch(() => undefined);
  const coordinator = await opening;
  try {
    const reused = previous && (await unchangedChecksums(coordinator, previous, config.mirror.full, digest));
    if (reused && 'data' in reused) {
      options.logger?.debug(
        reused.proof.quiet
          ? "fingerprint data: no transaction on production's server since the last proof but pgtwin's own markers; checksums reused"
          : 'fingerprint data: no mirrored row written since the last reading; checksums reused',
      );
      const { digest: structureDigest, catalogs, read, proof } = await structure;
      // The structure was read again and found the same (a column added and dropped again): kept, so the
      // next run need not read it.
      if (read) await keepBaseline(file, { ...previous, catalogs, quiet: undefined });
      const proofs = { file, instance: reused.proof.instance, data: reused.proof.at, structure: proof?.at };
      const recheck = async (client: pg.ClientBase, snapshot: string) => {
        const requested = config.mirror.full;
        const again = await unchangedChecksums(client, previous, requested, digest, snapshot);
        if ('data' in again) return undefined;
        // Written, but perhaps to the same values (an update that changes nothing, a row deleted and put
        // back): the rows hashed in that snapshot tell exactly.
        const now = await tableChecksums(client, requested, { quick: true, snapshot });
        const same = Object.entries(reused.data).every(
          ([table, sum]) => now[table]?.checksum === sum.checksum && now[table]?.rowCount === sum.rowCount,
        );
        return same ? undefined : again.stale;
      };
      return { structure: structureDigest, data: reused.data, proofs, recheck };
    }
    const why = options.fresh
      ? 'PGTWIN_REBUILD'
      : reused
        ? `since the last reading, ${reused.stale}`
        : 'no reading kept';
    options.logger?.debug(`fingerprint data: hashing every mirrored row (${why})`);
    let state: BaselineState | undefined;
    const held = await options.snapshot?.();
    const [{ digest: structureDigest, catalogs, proof }, data] = await Promise.all([
      structure,
      // Compared only with fingerprints taken on this production server, so the quicker hash will do.
      tableChecksums(coordinator, config.mirror.full, {
        quick: true,
        snapshot: held,
        openSession,
        sessions: parallelSessions(config.production.host),
        inSnapshot: async (client, catalog) => {
          state = await captureBaseline(client, catalog);
        },
      }),
    ]);
    if (!state) return { structure: structureDigest, data, proofs: undefined };
    const tables = Object.fromEntries(
      Object.entries(state.tables).map(([key, table]) => [key, { ...table, checksum: data[key]! }]),
    );
    const requested = config.mirror.full;
    await keepBaseline(file, { ...state, requested, structure: structureDigest, catalogs, tables });
    const { instance, snapshot } = state.server;
    return {
      structure: structureDigest,
      data,
      proofs: { file, instance, data: snapshot, structure: proof?.at },
    };
  } finally {
    // Production is only read: nothing waits for this session to be gone.
    endSoon(coordinator);
  }
}

/**
 * The structure fingerprint: the previous reading's when the catalogs provably did not change since
 * (`read: false`), else read from production; with the catalogs' state it stands for.
 */
async function readStructureFingerprint(
  config: ResolvedConfig,
  source: ProductionStructure,
  previous: ProductionBaseline | undefined,
  logger: Logger | undefined,
): Promise<{
  digest: string;
  catalogs: CatalogState | undefined;
  read: boolean;
  proof: Pick<Proof, 'at'> | undefined;
}> {
  if (previous) {
    const unchanged = await unchangedStructure(source.session, previous, structureReader(config));
    if ('proof' in unchanged) {
      logger?.debug(
        unchanged.proof.quiet
          ? "fingerprint structure: no transaction on production's server since the last proof but pgtwin's own markers; fingerprint reused"
          : 'fingerprint structure: no catalog row written since the last reading; fingerprint reused',
      );
      return { digest: previous.structure, catalogs: previous.catalogs, read: false, proof: unchanged.proof };
    }
    logger?.debug(`fingerprint structure: reading the catalogs (since the last reading, ${unchanged.stale})`);
  }
  const { snapshot, catalogs } = await source.read();
  const digest = await structureFingerprint(snapshot, selectionFromConfig(config));
  return { digest, catalogs, read: true, proof: catalogs && { at: catalogs.snapshot } };
}

/**
 * Where and in which snapshots this run proved (or read) production's rows and catalogs: after the run, when
 * the test database lives on the same running server, {@link recordProductionQuiet} keeps them as quiet
 * points with pgtwin's own marker writes since.
 */
export interface ProductionProofs {
  file: string;
  instance: string;
  data: string;
  structure: string | undefined;
}

/**
 * Records in the production baseline the quiet points of `proofs` with pgtwin's own writes since (markers,
 * the test database's sequences put back: `test.ownWritesSince`), when the test server `test` is
 * production's very server (same system and running instance): the next run proves production unchanged
 * without reading it while the server took no other transaction id (see `QuietPoint`). A point after which
 * the only other ids were rolled back (a run's tests) is carried forward to now ({@link pastRolledBack}, on
 * `test.session`). Call after the run's last own write. Best effort: the baseline is only a shortcut.
 */
export async function recordProductionQuiet(
  proofs: ProductionProofs,
  test: ServerIdentity & { session: pg.ClientBase; ownWritesSince(xmax: string): string[] },
): Promise<void> {
  const baseline = await readBaseline(proofs.file);
  // Both: the ids are one server's only if it is the same running server of the same cluster (a restored
  // copy shares the system identifier, not the ids taken since).
  if (!baseline || test.instance !== proofs.instance || test.systemId !== baseline.server.system) return;
  const point = async (snapshot: string | undefined) => {
    const quiet = snapshot === undefined ? undefined : quietPoint(snapshot);
    if (!quiet) return undefined;
    const own = withOwnWrites(quiet, test.ownWritesSince);
    const past = await pastRolledBack(test.session, own, test.ownWritesSince).catch(() => undefined);
    return past ?? own;
  };
  const [data, structure] = [await point(proofs.data), await point(proofs.structure)];
  const quiet = { instance: proofs.instance, data, structure };
  await keepBaseline(proofs.file, { ...baseline, quiet });
}

/** What read the structure: pgtwin's version and the schemas selected, which its fingerprint depends on. */
function structureReader(config: ResolvedConfig): string {
  const reader = [pgtwinVersion(), SNAPSHOT_FORMAT, selectionFromConfig(config)];
  return createHash('sha256').update(JSON.stringify(reader)).digest('hex').slice(0, 16);
}

/** Only a shortcut: a project whose cache cannot be written reads production in full every time. */
async function keepBaseline(file: string, baseline: ProductionBaseline): Promise<void> {
  await writeBaseline(file, baseline).catch(() => undefined);
}
