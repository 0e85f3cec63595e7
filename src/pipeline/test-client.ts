import pg from 'pg';
import { DatabaseTarget } from '../config/database-target.js';
import { ENV_NAMES } from '../config/env-names.js';
import { IsolationError } from '../errors.js';
import { activeIsolation } from '../isolation/enable-isolation.js';
import { optedOutCopy } from './test-file-hooks.js';

/**
 * A connected client for the current test: a plain connection to the copy of an opted-out test, file or
 * `describe`; else bound to the test transaction when isolation is on; else a plain connection to
 * `TEST_DATABASE_URL`.
 */
export async function connectTestClient(): Promise<pg.Client> {
  const copy = optedOutCopy();
  const isolation = activeIsolation();
  const url = process.env[ENV_NAMES.test.url];
  let client: pg.Client;
  if (copy) client = new pg.Client(new DatabaseTarget(copy).clientConfig());
  else if (isolation) client = isolation.client();
  else if (url) client = new pg.Client({ connectionString: url });
  else {
    throw new IsolationError(
      'not-enabled',
      'No test database: the db fixture needs the pgtwin preset (plugins: [pgtwin()] or setupFiles: [pgtwin/vitest/setup]).',
    );
  }
  await client.connect();
  return client;
}
