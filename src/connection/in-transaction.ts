import type pg from 'pg';

/**
 * Runs `fn` in a transaction on `client`: `begin` first (`BEGIN`, or e.g. `BEGIN READ ONLY`), COMMIT when `fn`
 * resolves, ROLLBACK when it or the COMMIT throws. `client` must not already be in a transaction.
 *
 * @example
 * await inTransaction(client, (tx) => tx.query('UPDATE prompts SET text = $1', ['hello']));
 */
export async function inTransaction<C extends pg.ClientBase, T>(
  client: C,
  fn: (client: C) => Promise<T>,
  begin = 'BEGIN',
): Promise<T> {
  await client.query(begin);
  try {
    const result = await fn(client);
    await endTransaction(client);
    return result;
  } catch (error) {
    await endTransaction(client, error);
    throw error;
  }
}

/**
 * Ends the current transaction: COMMIT, or ROLLBACK after `error` (a failed ROLLBACK keeps `error`). For a
 * transaction whose end is in a `finally` apart from its BEGIN; else use {@link inTransaction}.
 */
export async function endTransaction(client: pg.ClientBase, error?: unknown): Promise<void> {
  if (error === undefined) {
    await client.query('COMMIT');
  } else {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}
