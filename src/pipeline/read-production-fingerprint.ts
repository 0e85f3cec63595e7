import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import {
  baselineFile,
  captureBaseline,
  readBaseline,
  unchangedChecksums,
  writeBaseline,
  type BaselineState,
} from '../mirror/checksum-baseline.js';
import { tableChecksums, type TableChecksum } from '../mirror/table-checksum.js';
import { selectionFromConfig } from '../structure/schema-selection.js';
import { structureFingerprint } from '../structure/structure-fingerprint.js';
import type { StructureSource } from '../structure/structure-source.js';
import type { Logger } from '../util/logger.js';

/**
 * What the template fingerprint takes from production: the structure's fingerprint (of `structure`, a
 * snapshot, possibly still being read, or a session on production to read it), and the mirrored tables' exact
 * checksums. The checksums of the previous reading (kept in the project's `node_modules/.cache/pgtwin`) are
 * taken again when production provably holds the same rows and structure since (see `unchangedChecksums`:
 * no row written since, same row counts, same server and timeline); else every row is hashed, over
 * read-only sessions sharing one snapshot, and that reading is kept for the next run. `fresh`: hash
 * regardless (`PGTWIN_REBUILD`).
 */
export async function readProductionFingerprint(
  config: ResolvedConfig,
  structure: StructureSource | Promise<StructureSource>,
  options: { fresh?: boolean; logger?: Logger } = {},
): Promise<{ structure: string; data: Record<string, TableChecksum> }> {
  const openSession = () => connect(config.production, 'production');
  const digest = (async () => structureFingerprint(await structure, selectionFromConfig(config)))();
  digest.catch(() => undefined);
  const file = baselineFile(config.rootDir, config.production);
  const coordinator = await openSession();
  try {
    const previous = options.fresh ? undefined : await readBaseline(file);
    const reused = previous && (await unchangedChecksums(coordinator, previous, config.mirror.full, digest));
    if (reused && 'data' in reused) {
      options.logger?.debug(
        'fingerprint data: no mirrored row written since the last reading; checksums reused',
      );
      return { structure: await digest, data: reused.data };
    }
    const why = options.fresh
      ? 'PGTWIN_REBUILD'
      : reused
        ? `since the last reading, ${reused.stale}`
        : 'no reading kept';
    options.logger?.debug(`fingerprint data: hashing every mirrored row (${why})`);
    let state: BaselineState | undefined;
    const [structureDigest, data] = await Promise.all([
      digest,
      // Compared only with fingerprints taken on this production server, so the quicker hash will do.
      tableChecksums(coordinator, config.mirror.full, {
        quick: true,
        openSession,
        inSnapshot: async (client, catalog) => {
          state = await captureBaseline(client, catalog);
        },
      }),
    ]);
    if (state) {
      const tables = Object.fromEntries(
        Object.entries(state.tables).map(([key, table]) => [key, { ...table, checksum: data[key]! }]),
      );
      // Only a shortcut: a project whose cache cannot be written hashes every time.
      const baseline = { ...state, requested: config.mirror.full, structure: structureDigest, tables };
      await writeBaseline(file, baseline).catch(() => undefined);
    }
    return { structure: structureDigest, data };
  } finally {
    await coordinator.end();
  }
}
