import type pg from 'pg';
import { test } from 'vitest';
import { enableIsolation, type Isolation, type IsolationOptions } from '../../src/isolation/index.js';

/**
 * A Vitest `test` whose tests receive `db`, a connected client bound to the test's transaction (explicit
 * mode unless `implicit: true`). Isolation is enabled once per file and closed after it.
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
