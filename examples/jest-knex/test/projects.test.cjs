const { afterAll, describe, expect, it } = require('@jest/globals');
const { createDatabase } = require('../src/database.cjs');
const { createProject, projectSlugs, renderPrompt } = require('../src/project-repository.cjs');
const { projectFactory } = require('./project-factory.cjs');

const db = createDatabase();
afterAll(() => db.destroy());

describe('the twin of production', () => {
  it('has the mirrored object models and prompts', async () => {
    const [{ count }] = await db('public.object_models').count({ count: '*' });
    expect(Number(count)).toBeGreaterThan(0);
    expect(await renderPrompt(db, 'prompt 4', { topic: 'tests', tone: 'calm' })).toBe(
      'Write about tests in calm tone.',
    );
  });

  it('holds only the seed data in structure-only tables', async () => {
    expect((await db('public.clients').select('slug')).map((row) => row.slug)).toEqual(['acme']);
    expect(await projectSlugs(db)).toEqual(['docs', 'launch']);
  });

  it('lets a test create a project', async () => {
    await createProject(db, { clientSlug: 'acme', slug: 'written', name: 'Written' });
    expect(await projectSlugs(db)).toContain('written');
  });

  it('rolls that project back before the next test', async () => {
    expect(await projectSlugs(db)).toEqual(['docs', 'launch']);
  });

  it('creates rows with a factory inside a test', async () => {
    const project = await projectFactory(db).create();
    expect(await projectSlugs(db)).toContain(project.slug);
  });
});
