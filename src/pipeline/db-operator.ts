import type pg from 'pg';
import { connect } from '../connection/connect.js';
import { DBConnector, type DBConnectorOptions } from '../connection/db-connector.js';
import { guardDestructive, refuseProductionConnection } from '../guard/production-guard.js';
import { syncTables } from '../mirror/sync-tables.js';
import { loadConfiguredSeeds } from '../seed/load-configured-seeds.js';
import type { SeedResult } from '../seed/load-seed-data.js';
import { cloneStructure } from '../structure/clone-structure.js';
import { resolveSchemas, selectionFromConfig } from '../structure/schema-selection.js';
import { SchemaSetup } from '../structure/schema-setup.js';

/**
 * Query helpers over a {@link DBConnector}: `DBOperator({ testMode: 'e2e' })` works on the test database,
 * `DBOperator()` reads production. Destructive operations (seeding, reset) refuse production.
 *
 * @example
 * ```ts
 * await using db = new DBOperator({ testMode: 'e2e' });
 * const prompt = await db.one('SELECT * FROM public.prompts WHERE name = $1', ['summary']);
 * ```
 */
export class DBOperator {
  readonly connector: DBConnector;

  constructor(options: DBConnectorOptions = {}) {
    this.connector = new DBConnector(options);
  }

  get testMode() {
    return this.connector.testMode;
  }

  /** Runs a statement and returns the full result. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.connector.query<R>(sql, params);
  }

  /** All rows of a query. */
  async many<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]> {
    return (await this.query<R>(sql, params)).rows;
  }

  /** The single row of a query, or `undefined`; throws if there are several. */
  async maybeOne<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<R | undefined> {
    const rows = await this.many<R>(sql, params);
    if (rows.length > 1) throw new Error(`Expected at most one row, got ${rows.length}: ${sql}`);
    return rows[0];
  }

  /** The single row of a query; throws if there is none or several. */
  async one<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R> {
    const row = await this.maybeOne<R>(sql, params);
    if (row === undefined) throw new Error(`Expected one row, got none: ${sql}`);
    return row;
  }

  /** Runs `fn` in a transaction on one client: committed when it resolves, rolled back when it throws. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connector.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** Whether `schema.table` (a bare name means `public`) exists. */
  async tableExists(table: string): Promise<boolean> {
    const qualified = table.includes('.') ? table : `public.${table}`;
    const row = await this.one<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [
      qualified,
    ]);
    return row.exists;
  }

  /** Number of rows in `schema.table`. */
  async count(table: string): Promise<number> {
    const qualified = table.includes('.') ? table : `public.${table}`;
    const [schema, name] = qualified.split('.') as [string, string];
    const client = await this.connector.connect();
    try {
      const sql = `SELECT count(*)::int AS n FROM ${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)}`;
      return (await client.query<{ n: number }>(sql)).rows[0]!.n;
    } finally {
      client.release();
    }
  }

  /**
   * Loads seed files (default: the configured `seeds`) into the test database in one transaction: a failure
   * loads nothing. Refuses production.
   *
   * @example
   * await new DBOperator({ testMode: 'e2e' }).loadSeedData('tests/data/seed_data.json');
   */
  async loadSeedData(seeds?: string | readonly string[]): Promise<SeedResult | undefined> {
    const config = await this.connector.config();
    if (this.connector.isProduction) refuseProductionConnection('load seed data', config.production.database);
    await guardDestructive({ config, target: config.test, operation: 'load seed data into' });
    const client = await this.connector.connect();
    try {
      return await loadConfiguredSeeds(client, config, { seeds });
    } finally {
      client.release();
    }
  }

  /**
   * Returns the test database to its known state: production's structure (or the schema scripts), the
   * mirrored tables' data, the seeds, and nothing else (test-only project schemas a test created are dropped).
   * Refuses production.
   */
  async resetTestDatabase(): Promise<void> {
    const config = await this.connector.config();
    if (this.connector.isProduction)
      refuseProductionConnection('reset the database', config.production.database);
    await guardDestructive({ config, target: config.test, operation: 'reset' });
    // Sessions the application left open would hold locks on the schemas being replaced.
    await this.connector.end();
    const test = await connect(config.test, 'test');
    try {
      if (config.schema.scripts !== undefined) {
        for (const schema of await resolveSchemas(test, selectionFromConfig(config))) {
          await test.query(`DROP SCHEMA ${test.escapeIdentifier(schema)} CASCADE`);
        }
        await new SchemaSetup({ testMode: 'e2e', config }).ensurePublicSchema();
      } else {
        const production = await connect(config.production, 'production');
        try {
          const selection = selectionFromConfig(config);
          const kept = new Set(await resolveSchemas(production, selection));
          for (const schema of await resolveSchemas(test, selection)) {
            if (!kept.has(schema)) await test.query(`DROP SCHEMA ${test.escapeIdentifier(schema)} CASCADE`);
          }
          await cloneStructure(production, test, { selection, replace: true });
          await syncTables(production, test, { policy: config });
        } finally {
          await production.end();
        }
      }
      await loadConfiguredSeeds(test, config);
    } finally {
      await test.end();
    }
  }

  /** Closes the connections. */
  close(): Promise<void> {
    return this.connector.end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
