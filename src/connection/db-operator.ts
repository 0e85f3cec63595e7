import type pg from 'pg';
import { DBConnector, type DBConnectorOptions } from './db-connector.js';

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

  /** Closes the connections. */
  close(): Promise<void> {
    return this.connector.end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
