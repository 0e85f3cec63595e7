import type pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, test } from 'vitest';
import { enableIsolation, type Isolation, type IsolationOptions } from './enable-isolation.js';
import { installIsolationHooks, type IsolationHooks } from './runner-hooks.js';

/**
 * Isolates every test of the current Vitest file (implicit mode by default). Call at the top of the file.
 *
 * @example
 * installVitestHooks({ connectionString: process.env.TEST_DATABASE_URL });
 */
export function installVitestHooks(options: IsolationOptions): IsolationHooks {
  return installIsolationHooks({ beforeAll, beforeEach, afterEach, afterAll }, options);
}

/**
 * A Vitest `test` whose tests receive `db`, a connected client bound to the test's transaction (explicit
 * mode unless `implicit: true`). Isolation is enabled once per file and closed after it.
 *
 * @example
 * const it = createIsolatedTest({ connectionString: url });
 * it('inserts', async ({ db }) => { await db.query('INSERT INTO t VALUES (1)'); });
 */
export function createIsolatedTest(options: IsolationOptions) {
  return test.extend<{ $test: { db: pg.Client }; $file: { isolation: Isolation } }>({
    isolation: [
      // eslint-disable-next-line no-empty-pattern -- Vitest requires the destructuring pattern.
      async ({}, use) => {
        const isolation = await enableIsolation({ implicit: false, ...options });
        await use(isolation);
        await isolation.close();
      },
      { scope: 'file' },
    ],
    db: async ({ isolation }, use) => {
      await isolation.begin();
      const db = isolation.client();
      try {
        await db.connect();
        await use(db);
      } finally {
        await db.end();
        await isolation.rollback();
      }
    },
  });
}
