import type pg from 'pg';
import { inTransaction } from '../connection/in-transaction.js';
import { DBConnector, type DBConnectorOptions } from '../connection/db-connector.js';
import { SetupError } from '../errors.js';
import { guardDestructive, refuseProductionConnection } from '../guard/production-guard.js';
import { newMarker } from '../guard/test-marker.js';
import { TwinDatabases } from '../provision/twin-databases.js';
import { loadConfiguredSeeds } from '../seed/load-configured-seeds.js';
import type { SeedResult } from '../seed/load-seed-data.js';
import { silentLogger } from '../util/logger.js';
import { buildTwin } from './build-twin.js';
import { openTwinSource } from './twin-source.js';

/**
 * Query helpers over a {@link DBConnector}: `DBOperator({ target: 'test' })` (or `{ testMode: 'e2e' }`) works
 * on the test database, `DBOperator({ target: 'production' })`, the default, reads production. Destructive
 * operations (seeding, reset) refuse production.
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

  /** The database this operator reaches: `'production'` (read-only) or `'test'`. */
  get which() {
    return this.connector.which;
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
      return await inTransaction(client, fn);
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
    const client = await this.connector.connect();
    try {
      await guardDestructive({ config, client, operation: 'load seed data into' });
      return await loadConfiguredSeeds(client, config, { seeds });
    } finally {
      client.release();
    }
  }

  /**
   * Returns the test database to its known state: production's structure (or the schema scripts, or the
   * dump), the mirrored tables' data, the seeds, and nothing else (test-only project schemas a test created
   * are gone). Atomic: the fresh state is built in a new database beside the old one and swapped in by a
   * rename, so a failure (a refused seed, a lost connection, a killed process) leaves the previous state.
   * Sessions still connected to the test database are closed. Needs the admin role (`TEST_DB_ADMIN_URL`),
   * which creates the new database. Refuses production.
   */
  async resetTestDatabase(): Promise<void> {
    const config = await this.connector.config();
    if (this.connector.isProduction)
      refuseProductionConnection('reset the database', config.production.database);
    await this.connector.end();
    await guardDestructive({ config, target: config.test, operation: 'reset' });
    const databases = await TwinDatabases.open(config);
    try {
      await databases.cleanLeftovers();
      // A reset database was built afresh, not copied from a template: no fingerprint, never "clean".
      const {
        scripts: _scripts,
        fingerprint: _fingerprint,
        clean: _clean,
        optedOut: _optedOut,
        ...marker
      } = (await databases.marker(config.test.database)) ?? newMarker('test');
      const source = await openTwinSource(config);
      try {
        await databases.create(config.test.database, {
          marker,
          replaceLive: true,
          fill: async (target) => {
            await buildTwin(config, target, { source, context: { logger: silentLogger, phases: [] } });
          },
        });
      } finally {
        await source.close();
      }
    } catch (error) {
      // The build's phases wrap errors for the global setup's messages; a reset reports the error itself.
      throw error instanceof SetupError && error.cause !== undefined ? error.cause : error;
    } finally {
      await databases.close();
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
