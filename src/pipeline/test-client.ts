import pg from 'pg';
import { ENV_NAMES } from '../config/env-names.js';
import { IsolationError } from '../errors.js';
import { activeIsolation } from '../isolation/enable-isolation.js';

/**
 * A connected client for the current test: bound to the test transaction when isolation is on, else a plain
 * connection to `TEST_DATABASE_URL` (an opted-out test's database copy).
 */
export async function connectTestClient(): Promise<pg.Client> {
  const isolation = activeIsolation();
  const url = process.env[ENV_NAMES.test.url];
  if (!isolation && !url) {
    throw new IsolationError(
      'not-enabled',
      'No test database: the db fixture needs the pgtwin preset (plugins: [pgtwin()] or setupFiles: [pgtwin/vitest/setup]).',
    );
  }
  const client = isolation ? isolation.client() : new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}
