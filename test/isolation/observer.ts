import pg from 'pg';
import { exemptFromIsolation } from '../../src/isolation/exemption.js';

/**
 * Reads committed data through a connection of its own, outside any test transaction. `localhost`
 * instead of 127.0.0.1 also keeps pg-transactional-tests (which keys connections by host) off it.
 */
export async function observe<R extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<R[]> {
  const target = new URL(url);
  if (target.hostname === '127.0.0.1') target.hostname = 'localhost';
  const client = exemptFromIsolation(new pg.Client({ connectionString: target.toString() }));
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Fails with a clear message when `promise` does not settle in time, so a hang becomes a failure. */
export function withinDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms: it hangs`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
