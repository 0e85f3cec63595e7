import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect, isOutOfConnections } from '../connection/connect.js';
import { endSoon } from '../connection/end-soon.js';
import { MirrorError } from '../errors.js';
import { productionIdentity } from '../guard/production-guard.js';
import { readDumpManifest } from '../mirror/dump-manifest.js';
import { loadTables } from '../mirror/load-tables.js';
import { holdSnapshot, parallelSessions, type HeldSnapshot } from '../mirror/mirror-session.js';
import { verifyCrossingForeignKeys } from '../mirror/replace-table-data.js';
import { restoreDump } from '../mirror/restore-dump.js';
import type { FingerprintSources } from '../provision/twin-fingerprint.js';
import { applySqlScripts } from '../structure/apply-sql-scripts.js';
import { applyStructure, ObjectCreator } from '../structure/apply-structure.js';
import { resolveSchemas, selectionFromConfig } from '../structure/schema-selection.js';
import { independentIndexes, splitStructure } from '../structure/split-structure.js';
import type { StructureObject, StructureSnapshot } from '../structure/structure-snapshot.js';
import type { Logger } from '../util/logger.js';
import {
  productionStructure,
  readProductionFingerprint,
  type ProductionStructure,
  type ProductionProofs,
} from './read-production-fingerprint.js';

/** What the structure and data were built from. */
export type TwinSource = 'production' | 'dump' | 'scripts';

/** What a source contributes to the template's fingerprint. */
export type SourceFingerprint = Pick<FingerprintSources, 'structure' | 'data'>;

/**
 * Where a twin's structure and mirrored rows come from, chosen once per run by {@link openTwinSource}: one
 * implementation per source (production, a dump, schema scripts), like kysely's one `Dialect` per database.
 * Close it when the run no longer reads it.
 */
export interface TwinSourceReader {
  readonly name: TwinSource;
  /**
   * What the fingerprint takes from the source (production's structure fingerprint and mirrored tables'
   * checksums; the dump manifest's; nothing for scripts, whose files are local inputs). `structure` is
   * `undefined` when the source has no structure fingerprint of its own. `fresh`: read everything again rather
   * than reuse what a previous reading proved still valid (`PGTWIN_REBUILD`).
   */
  readFingerprint(options?: { fresh?: boolean; logger?: Logger }): Promise<
    SourceFingerprint & {
      readonly structureFingerprint: string | undefined;
      /** Production's: where and when it was proven, for `recordProductionQuiet` after the run. */
      readonly proofs?: ProductionProofs;
    }
  >;
  /** Builds the structure into `test`, an empty database; returns the `clone` phase's detail. */
  buildStructure(test: pg.Client): Promise<string>;
  /**
   * Copies the mirrored tables' rows into `test`, which is `target` (the `sync` phase), and creates what the
   * structure step left for after the data; absent when the structure step brings them.
   */
  syncData?(test: pg.Client, options: { target: DatabaseTarget; logger: Logger }): Promise<string>;
  close(): Promise<void>;
}

/**
 * Opens the source the configuration asks for: a dump directory, else schema scripts, else production
 * (a read-only session, opened now so an unreachable production fails before anything changes).
 */
export async function openTwinSource(config: ResolvedConfig): Promise<TwinSourceReader> {
  if (config.source.dump) return new DumpSource(config, config.source.dump);
  if (config.schema.scripts) return new ScriptsSource(config, config.schema.scripts);
  const production = await connect(config.production, 'production');
  // Read first on this session, for the guard of this run's destructive steps, which then opens none.
  void productionIdentity(config, production);
  return new ProductionSource(config, production);
}

/** The source the configuration asks for, without opening it. */
export function twinSourceName(config: ResolvedConfig): TwinSource {
  return config.source.dump ? 'dump' : config.schema.scripts ? 'scripts' : 'production';
}

/**
 * Builds as pg_restore does: the tables first, then their rows (copied in parallel over one snapshot), then
 * the keys, indexes, foreign keys and triggers, each built once over the loaded rows.
 */
class ProductionSource implements TwinSourceReader {
  readonly name = 'production';
  /** What {@link buildStructure} left for {@link syncData} to create once the rows are in. */
  private afterData: StructureSnapshot | undefined;
  /** Production's structure, read once for both the fingerprint and the build, so they describe the same. */
  private readonly structure: ProductionStructure;
  /**
   * The snapshot the fingerprint hashed the mirrored rows in, held until the build has copied them from it
   * (or the source closes), so the template holds the very rows its name stands for.
   */
  private held: Promise<HeldSnapshot | undefined> | undefined;
  /** The fingerprint's reading under way, which may still be joining {@link held} with more sessions. */
  private reading: Promise<unknown> = Promise.resolve();
  /** Proves the fingerprint's checksums again in a snapshot, when they were proven rather than hashed. */
  private recheck: ((client: pg.ClientBase, snapshot: string) => Promise<string | undefined>) | undefined;

  constructor(
    private readonly config: ResolvedConfig,
    private readonly production: pg.Client,
  ) {
    this.structure = productionStructure(production, config);
  }

  async readFingerprint(options: { fresh?: boolean; logger?: Logger } = {}) {
    const reading = readProductionFingerprint(this.config, this.structure, {
      ...options,
      snapshot: async () => (await this.holdSnapshot())?.id,
    });
    this.reading = reading.catch(() => undefined);
    const { structure, data, proofs, recheck } = await reading;
    this.recheck = recheck;
    return { structure, data, structureFingerprint: structure, proofs };
  }

  /**
   * Opens the held snapshot once. Without a connection slot for its session the two readings take a snapshot
   * each, as a build whose fingerprint was proven rather than hashed does (see the README's fingerprint).
   */
  private holdSnapshot(): Promise<HeldSnapshot | undefined> {
    this.held ??= holdSnapshot(() => connect(this.config.production, 'production')).catch((error) => {
      if (isOutOfConnections(error)) return undefined;
      throw error;
    });
    return this.held;
  }

  async buildStructure(test: pg.Client): Promise<string> {
    const { snapshot } = await this.structure.read();
    const { beforeData, afterData } = splitStructure(snapshot);
    await applyStructure(test, beforeData, { replace: true });
    this.afterData = afterData;
    return `${snapshot.objects.length} objects`;
  }

  async syncData(test: pg.Client, options: { target: DatabaseTarget; logger: Logger }): Promise<string> {
    const { config } = this;
    const afterData = this.afterData;
    this.afterData = undefined;
    if (!afterData) throw new Error('ProductionSource.syncData runs after buildStructure');
    // Each table's indexes and keys are built as soon as its rows are in, while the other tables load (CREATE
    // INDEX shares the table's lock, so a table's indexes are built at once too).
    const { indexes, rest } = independentIndexes(afterData);
    const byTable = new Map<string, StructureObject[]>();
    const sessions = parallelSessions(options.target.host);
    for (const { table, object } of indexes) byTable.set(table, [...(byTable.get(table) ?? []), object]);
    const creator = new ObjectCreator(() => connect(options.target, 'test'), sessions);
    const loaded = (table: string) => creator.add(byTable.get(table) ?? []);
    let tables: Awaited<ReturnType<typeof loadTables>>['tables'];
    try {
      await this.holdProvenRows();
      ({ tables } = await loadTables(this.production, {
        snapshot: (await this.held)?.id,
        policy: config,
        openSource: () => connect(config.production, 'production'),
        openTarget: () => connect(options.target, 'test'),
        sessions,
        onTableLoaded: loaded,
        onPlanned: (planned) => creator.limit(planned),
      }));
      for (const table of tables) options.logger.debug(`sync ${table.table}: ${table.rowCount} rows`);
      // The tables not mirrored (empty until the seeds) get theirs now.
      const copied = new Set(tables.map((table) => table.table));
      for (const table of byTable.keys()) if (!copied.has(table)) loaded(table);
      // Checked before the foreign keys exist, so a violation gets advice rather than PostgreSQL's bare error.
      await verifyCrossingForeignKeys(test, afterData.tables, copied);
    } catch (error) {
      await creator.finish().catch(() => undefined);
      throw error;
    } finally {
      // Not awaited: the keys and indexes need not wait for the fingerprint's last sessions.
      void this.releaseSnapshot();
    }
    await creator.finish();
    await applyStructure(test, rest);
    return `${tables.length} tables, ${tables.reduce((sum, table) => sum + table.rowCount, 0)} rows; ${afterData.objects.length} objects after the data`;
  }

  /**
   * When the fingerprint's checksums were proven rather than hashed, holds a snapshot for the copy now and
   * proves them again in it, so the template holds the rows its name stands for: rows committed since the
   * proof fail the build rather than go into a template named after the rows before them. Without a
   * connection slot for the held snapshot's session, the copy takes a snapshot of its own, unchecked.
   */
  private async holdProvenRows(): Promise<void> {
    const recheck = this.recheck;
    if (!recheck || this.held) return;
    const held = await this.holdSnapshot();
    if (!held) return;
    const stale = await recheck(this.production, held.id);
    if (stale === undefined) return;
    const tables = this.config.mirror.full.join(', ');
    throw new MirrorError(
      this.config.mirror.full[0] ?? '',
      `Production's mirrored tables (${tables}) changed while the test database was being built: ${stale}. Nothing was published; run again, and the next run hashes their rows anew.`,
    );
  }

  /** Releases {@link held} once the fingerprint's sessions are done with it too (a copy can end first). */
  private async releaseSnapshot(): Promise<void> {
    const held = this.held;
    if (!held) return;
    await this.reading;
    if (this.held === held) this.held = undefined;
    await (await held.catch(() => undefined))?.release();
  }

  async close(): Promise<void> {
    await this.releaseSnapshot();
    // Production is only read: nothing waits for this session to be gone.
    endSoon(this.production);
  }
}

class DumpSource implements TwinSourceReader {
  readonly name = 'dump';

  constructor(
    private readonly config: ResolvedConfig,
    private readonly dir: string,
  ) {}

  async readFingerprint() {
    const manifest = await readDumpManifest(this.dir);
    const data = Object.fromEntries(
      manifest.tables.map((table) => [table.table, { rowCount: table.rowCount, checksum: table.checksum }]),
    );
    const structure = manifest.structure.fingerprint;
    return { structure, data, structureFingerprint: structure };
  }

  async buildStructure(test: pg.Client): Promise<string> {
    const restored = await restoreDump({ dir: this.dir, target: test, policy: this.config, replace: true });
    const rows = restored.tables.reduce((sum, table) => sum + table.rowCount, 0);
    return `from dump ${this.dir}: ${restored.tables.length} tables, ${rows} rows`;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

class ScriptsSource implements TwinSourceReader {
  readonly name = 'scripts';

  constructor(
    private readonly config: ResolvedConfig,
    private readonly scripts: string,
  ) {}

  readFingerprint() {
    // The scripts' contents are local inputs of the fingerprint already.
    return Promise.resolve({ structure: 'scripts', data: {}, structureFingerprint: undefined });
  }

  async buildStructure(test: pg.Client): Promise<string> {
    const existing = await resolveSchemas(test, selectionFromConfig(this.config));
    const files = await applySqlScripts(test, this.scripts, {
      replaceSchemas: [...new Set(['public', ...existing])],
    });
    return `${files.length} scripts from ${this.scripts}`;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
