import type pg from 'pg';
import type { Logger } from '../util/logger.js';

/**
 * Takes the session-level advisory lock of `database` on `admin`'s server, so two runs setting up the same
 * test database on one server cannot interleave: the second waits (saying so) until the first closes `admin`.
 * Keyed by name, so runs on different test databases never wait for each other.
 */
export async function acquireSetupLock(
  admin: pg.ClientBase,
  database: string,
  logger: Logger,
): Promise<void> {
  const key = `pgtwin:${database}`;
  const { rows } = await admin.query<{ locked: boolean }>(
    'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
    [key],
  );
  if (rows[0]!.locked) return;
  logger.info(`waiting for another pgtwin run using ${database} on this server to finish`);
  await admin.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
}
