import type { Kysely } from 'kysely';
import { pgtwin } from 'pgtwin/vitest';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createDatabase, type Database } from '../src/database.js';
import { createProject, projectSlugs } from '../src/project-repository.js';

// These tests commit: they run on a fresh copy of the test database, made for this file.
pgtwin.isolation(false);

let db: Kysely<Database>;
beforeAll(() => {
  db = createDatabase();
});
afterAll(() => db.destroy());

it('runs on its own copy of the test database', () => {
  expect(process.env.TEST_DB_NAME).toMatch(/_copy_/);
  expect(inject('pgtwin').database).toBe(process.env.TEST_DB_NAME);
});

it('commits a project', async () => {
  await createProject(db, { clientSlug: 'acme', slug: 'committed', name: 'Committed' });
});

it('still sees the committed project in the next test', async () => {
  expect(await projectSlugs(db)).toEqual(['committed', 'docs', 'launch']);
});
