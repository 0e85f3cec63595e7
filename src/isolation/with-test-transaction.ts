import type pg from 'pg';
import { IsolationError } from '../errors.js';
import { activeIsolation, type Isolation } from './enable-isolation.js';

/**
 * Runs `fn` as one isolated test: inside a transaction rolled back afterwards, whatever `fn` does or
 * throws. `fn` gets a connected client bound to that transaction; in implicit mode the application's own
 * clients join the same transaction. Without `isolation`, uses the one {@link enableIsolation} enabled.
 *
 * @example
 * await withTestTransaction(isolation, async (db) => {
 *   await db.query('INSERT INTO users (name) VALUES ($1)', ['ada']);
 *   expect((await db.query('SELECT count(*)::int AS n FROM users')).rows[0].n).toBe(1);
 * }); // the insert is gone
 */
export async function withTestTransaction<T>(fn: (db: pg.Client) => Promise<T>): Promise<T>;
export async function withTestTransaction<T>(
  isolation: Isolation,
  fn: (db: pg.Client) => Promise<T>,
): Promise<T>;
export async function withTestTransaction<T>(
  first: Isolation | ((db: pg.Client) => Promise<T>),
  second?: (db: pg.Client) => Promise<T>,
): Promise<T> {
  const isolation = typeof first === 'function' ? activeIsolation() : first;
  const fn = typeof first === 'function' ? first : second!;
  if (!isolation) {
    throw new IsolationError(
      'not-enabled',
      'withTestTransaction(fn) needs exactly one isolation enabled in this process. Call ' +
        'enableIsolation(...) first, or pass its handle: withTestTransaction(isolation, fn).',
    );
  }
  await isolation.begin();
  const db = isolation.client();
  try {
    await db.connect();
    return await fn(db);
  } finally {
    await db.end();
    await isolation.rollback();
  }
}
