import { expect } from 'vitest';
import { test } from 'pgtwin/vitest/test';

test('hands a test a db connection inside its transaction', async ({ db }) => {
  await db.query(`INSERT INTO public.clients (name, slug) VALUES ('Fixture Co', 'fixture-co')`);
  const { rows } = await db.query<{ slug: string }>('SELECT slug FROM public.clients ORDER BY slug');
  expect(rows.map((row) => row.slug)).toEqual(['acme', 'fixture-co']);
});

test('does not see what the previous test wrote through db', async ({ db }) => {
  const { rows } = await db.query<{ slug: string }>('SELECT slug FROM public.clients ORDER BY slug');
  expect(rows.map((row) => row.slug)).toEqual(['acme']);
});
