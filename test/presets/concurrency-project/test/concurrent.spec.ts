import pg from 'pg';
import { afterAll, describe, test } from 'vitest';

const pool = new pg.Pool({ connectionString: process.env.TEST_DATABASE_URL });
afterAll(() => pool.end());

const slugs = async (pattern: string) =>
  (
    await pool.query<{ slug: string }>('SELECT slug FROM public.clients WHERE slug LIKE $1 ORDER BY slug', [
      pattern,
    ])
  ).rows.map((row) => row.slug);

describe.concurrent('tests running concurrently', () => {
  for (const name of ['alpha', 'beta', 'gamma']) {
    test(`sees its own row (${name}) and not its siblings'`, async ({ expect }) => {
      await pool.query('INSERT INTO public.clients (name, slug) VALUES ($1, $1::text)', [
        `concurrent-${name}`,
      ]);
      // Long enough for every sibling to have written before this one reads.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await slugs('concurrent-%')).toEqual([`concurrent-${name}`]);
    });
  }
});

test('finds nothing of the concurrent tests afterwards', async ({ expect }) => {
  expect(await slugs('concurrent-%')).toEqual([]);
  expect(await slugs('acme')).toEqual(['acme']);
});
