import type pg from 'pg';
import { test as baseTest } from 'vitest';
import { connectTestClient } from '../../src/pipeline/test-client.js';

/**
 * Vitest's `test` with a `db` fixture: a connected `pg` client bound to the test's transaction (rolled back
 * after the test, like every connection of the application), or to the opted-out copy when isolation is off.
 *
 * @example
 * ```ts
 * import { test } from 'pgtwin/vitest/test';
 * test('counts prompts', async ({ db }) => {
 *   const { rows } = await db.query('SELECT count(*) FROM public.prompts');
 * });
 * ```
 */
export const test = baseTest.extend<{ db: pg.Client }>({
  // eslint-disable-next-line no-empty-pattern -- Vitest requires the destructuring pattern.
  db: async ({}, use) => {
    const db = await connectTestClient();
    try {
      await use(db);
    } finally {
      await db.end();
    }
  },
});

export const it = test;
