import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';

// A module-level pool used at import time, before pgtwin's beforeAll: it holds real connections.
const pool = new pg.Pool({ connectionString: process.env.TEST_DATABASE_URL });
void pool.query("INSERT INTO public.clients (name, slug) VALUES ('module load', 'module-load')");
await pool.query('SELECT 1');
const late = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });

beforeAll(async () => {
  await late.connect();
  // Not awaited: the sleep holds the connection while the first test begins, the insert still queued.
  void late.query('SELECT pg_sleep(0.5)');
  void late.query("INSERT INTO public.clients (name, slug) VALUES ('before all', 'before-all')");
});
afterAll(async () => {
  await late.end();
  await pool.end();
});

const slugs = async () =>
  (await pool.query<{ slug: string }>('SELECT slug FROM public.clients ORDER BY slug')).rows.map(
    (row) => row.slug,
  );

test('writes inside the test through the pool connected at import', async () => {
  await pool.query("INSERT INTO public.clients (name, slug) VALUES ('in test', 'in-test')");
  expect(await slugs()).toContain('in-test');
});

test('still sees what was written outside tests, and not what the first test wrote', async () => {
  expect(await slugs()).toEqual(['acme', 'before-all', 'module-load']);
});
