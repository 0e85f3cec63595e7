import type pg from 'pg';
import { inTransaction } from '../connection/in-transaction.js';

/** A connected `pg.Client` (or pool client) or a `pg.Pool`; structure functions accept any of them. */
export type Queryable = pg.ClientBase | pg.Pool;

/**
 * Runs `fn` on one client: `queryable` itself, or a client checked out of the pool and released after.
 * Transactions need this, since a pool may send each statement to a different connection.
 */
export async function withClient<T>(
  queryable: Queryable,
  fn: (client: pg.ClientBase) => Promise<T>,
): Promise<T> {
  if (!isPool(queryable)) return fn(queryable);
  const client = await queryable.connect();
  try {
    return await fn(client);
  } finally {
    client.release();
  }
}

function isPool(queryable: Queryable): queryable is pg.Pool {
  return 'totalCount' in queryable && typeof (queryable as pg.Pool).connect === 'function';
}

/**
 * Runs `fn` inside one read-only repeatable-read transaction, so every catalog query it makes sees the
 * same state, under {@link CANONICAL_SETTINGS_SQL}.
 * The transaction is always ended (committed or rolled back); `client` must not already be in one.
 */
export function inCatalogSnapshot<T>(
  queryable: Queryable,
  fn: (client: pg.ClientBase) => Promise<T>,
): Promise<T> {
  return withClient(queryable, (client) =>
    inTransaction(
      client,
      async () => {
        await client.query(CANONICAL_SETTINGS_SQL);
        return fn(client);
      },
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    ),
  );
}

/**
 * Session settings (transaction-local) under which catalog text is read and applied: an empty
 * `search_path` makes `format_type`, `pg_get_*def` and friends qualify every name, and fixed date, interval,
 * float and time-zone formats make literals (partition bounds, defaults) print the same on any server.
 */
export const CANONICAL_SETTINGS_SQL = `SELECT pg_catalog.set_config('search_path', '', true),
  pg_catalog.set_config('TimeZone', 'UTC', true), pg_catalog.set_config('DateStyle', 'ISO, YMD', true),
  pg_catalog.set_config('IntervalStyle', 'postgres', true), pg_catalog.set_config('extra_float_digits', '3', true)`;
