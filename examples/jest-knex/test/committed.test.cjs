const { afterAll, beforeAll, describe, expect, it } = require('@jest/globals');
const { pgtwin } = require('pgtwin/jest');
const { createDatabase } = require('../src/database.cjs');
const { createProject, projectSlugs } = require('../src/project-repository.cjs');

const testDatabase = process.env.TEST_DB_NAME;
let db;

describe('tests that commit', () => {
  // These tests run on a fresh copy of the test database, made for this describe.
  pgtwin.isolation(false);
  beforeAll(() => {
    db = createDatabase();
  });
  afterAll(() => db.destroy());

  it('runs on its own copy of the test database', () => {
    expect(process.env.TEST_DB_NAME).not.toBe(testDatabase);
  });

  it('commits a project', async () => {
    await createProject(db, { clientSlug: 'acme', slug: 'committed', name: 'Committed' });
  });

  it('still sees the committed project in the next test', async () => {
    expect(await projectSlugs(db)).toEqual(['committed', 'docs', 'launch']);
  });
});
