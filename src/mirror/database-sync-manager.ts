import type pg from 'pg';
import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { configFrom, type ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { ConfigError } from '../errors.js';
import { guardDestructive } from '../guard/production-guard.js';
import { cloneStructure } from '../structure/clone-structure.js';
import { compareSchemas } from '../structure/compare-schemas.js';
import type { SchemaDiff } from '../structure/compare-schemas.js';
import { selectionFromConfig } from '../structure/schema-selection.js';
import type { StructureSnapshot } from '../structure/structure-snapshot.js';
import { compareMirror, type MirrorDrift } from './compare-mirror.js';
import { createDump } from './create-dump.js';
import type { DumpManifest } from './dump-manifest.js';
import { restoreDump, type RestoreDumpResult } from './restore-dump.js';
import { syncTables, type SyncTablesResult } from './sync-tables.js';

/** A database of the configuration: production is only ever a source, test only ever a target. */
export type DatabaseName = 'production' | 'test';

/**
 * The twin's structure and mirrored data, kept in step with production: clone, sync, dump, restore, compare.
 * Production is opened read-only; every write to the test database passes the production guard first.
 *
 * @example
 * ```ts
 * await using sync = new DatabaseSyncManager();
 * await sync.cloneStructure({ source: 'production', target: 'test' });
 * await sync.syncTables({ source: 'production', target: 'test' }); // sourceDb / targetDb also accepted
 * ```
 */
export class DatabaseSyncManager {
  readonly #config: Promise<ResolvedConfig>;
  readonly #open = new Set<pg.Client>();

  constructor(options: { config?: ResolvedConfig | ResolveConfigOptions } = {}) {
    this.#config = configFrom(options.config);
  }

  /** Recreates production's structure (public and the project schemas) in the test database, replacing what was there. */
  async cloneStructure(options: Direction & { replace?: boolean } = {}): Promise<StructureSnapshot> {
    direction(options, 'cloneStructure');
    const config = await this.#config;
    return this.#withBoth('clone structure into', async (production, test) =>
      cloneStructure(production, test, {
        selection: selectionFromConfig(config),
        replace: options.replace ?? true,
      }),
    );
  }

  /**
   * Copies the mirrored tables' data from production (one read-only snapshot) into the test database (one
   * transaction). Only tables in `mirror.full` unless `allowUnmirrored`; never structure-only tables or project schemas.
   */
  async syncTables(
    options: Direction & {
      tables?: readonly string[];
      schemas?: readonly string[];
      allowUnmirrored?: boolean;
    } = {},
  ): Promise<SyncTablesResult> {
    direction(options, 'syncTables');
    const config = await this.#config;
    let tables = options.tables ?? config.mirror.full;
    if (options.schemas) tables = tables.filter((table) => options.schemas!.includes(schemaOf(table)));
    return this.#withBoth('sync tables into', (production, test) =>
      syncTables(production, test, { policy: config, tables, allowUnmirrored: options.allowUnmirrored }),
    );
  }

  /** Writes a portable snapshot of production's structure and mirrored data to `dir`. */
  async createDump(options: { dir: string; gzip?: boolean }): Promise<DumpManifest> {
    const config = await this.#config;
    const production = await this.#connect(config, 'production');
    try {
      return await createDump({
        source: production,
        dir: options.dir,
        policy: config,
        schemas: selectionFromConfig(config),
        gzip: options.gzip,
      });
    } finally {
      await this.#close(production);
    }
  }

  /** Rebuilds the test database's structure and mirrored data from a snapshot `createDump` wrote. */
  async restoreDump(options: { dir: string }): Promise<RestoreDumpResult> {
    const config = await this.#config;
    const test = await this.#connect(config, 'test');
    try {
      await guardDestructive({ config, client: test, operation: 'restore a dump into' });
      return await restoreDump({ dir: options.dir, target: test, policy: config, replace: true });
    } finally {
      await this.#close(test);
    }
  }

  /** The structural difference between production and the test database. */
  async compareSchemas(): Promise<SchemaDiff> {
    const config = await this.#config;
    return this.#withBoth(undefined, (production, test) =>
      compareSchemas(production, test, selectionFromConfig(config)),
    );
  }

  /** Per mirrored table, whether the test database's data differs from production's. */
  async compareMirror(options: { keyLimit?: number } = {}): Promise<MirrorDrift> {
    const config = await this.#config;
    return this.#withBoth(undefined, (production, test) =>
      compareMirror(production, test, config.mirror.full, options),
    );
  }

  /** Closes any connection still open. */
  async close(): Promise<void> {
    await Promise.all([...this.#open].map((client) => this.#close(client)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #withBoth<T>(
    operation: string | undefined,
    fn: (production: pg.Client, test: pg.Client) => Promise<T>,
  ): Promise<T> {
    const config = await this.#config;
    const production = await this.#connect(config, 'production');
    try {
      const test = await this.#connect(config, 'test');
      try {
        if (operation) await guardDestructive({ config, client: test, operation });
        return await fn(production, test);
      } finally {
        await this.#close(test);
      }
    } finally {
      await this.#close(production);
    }
  }

  async #connect(config: ResolvedConfig, which: DatabaseName): Promise<pg.Client> {
    const client = await connect(which === 'production' ? config.production : config.test, which);
    this.#open.add(client);
    return client;
  }

  async #close(client: pg.Client): Promise<void> {
    if (this.#open.delete(client)) await client.end().catch(() => undefined);
  }
}

/**
 * Which way a copy goes, named the same in every method: `source` and `target`. `sourceDb` and `targetDb`
 * (the seed document's `sync_tables(source_db=…, target_db=…)`) are accepted as aliases. Only production →
 * test is allowed.
 */
export interface Direction {
  /** @default 'production' */
  source?: DatabaseName;
  /** @default 'test' */
  target?: DatabaseName;
  /** Alias of `source`. */
  sourceDb?: DatabaseName;
  /** Alias of `target`. */
  targetDb?: DatabaseName;
}

function direction(options: Direction, method: string): void {
  const source = options.source ?? options.sourceDb;
  const target = options.target ?? options.targetDb;
  if ((source ?? 'production') !== 'production' || (target ?? 'test') !== 'test') {
    throw new ConfigError(
      method,
      `${method} copies from 'production' to 'test' only, got ${JSON.stringify(source)} → ${JSON.stringify(target)}. ` +
        `pgtwin never writes to production.`,
    );
  }
}

function schemaOf(table: string): string {
  return table.includes('.') ? table.slice(0, table.indexOf('.')) : 'public';
}
