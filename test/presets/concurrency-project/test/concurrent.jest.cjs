const { afterAll, describe, expect, test } = require('@jest/globals');
const { Pool } = require('pg');

const pool = new Pool({ connectionString: process.env.TEST_DATABASE_URL });
afterAll(() => pool.end());

const slugs = async () =>
  (await pool.query("SELECT slug FROM public.clients WHERE slug LIKE 'jest-%' ORDER BY slug")).rows.map(
    (row) => row.slug,
  );

describe('test.concurrent under Jest', () => {
  for (const name of ['alpha', 'beta', 'gamma']) {
    test.concurrent(`writes ${name} and sees it`, async () => {
      await pool.query('INSERT INTO public.clients (name, slug) VALUES ($1, $1::text)', [`jest-${name}`]);
      expect(await slugs()).toContain(`jest-${name}`);
    });
  }
});

test('finds nothing the concurrent tests wrote afterwards', async () => {
  expect(await slugs()).toEqual([]);
});
