import { afterAll, describe, expect, inject, it } from 'vitest';
import { createDatabase } from '../src/database.js';
import { createProject, projectSlugs, renderPrompt } from '../src/project-repository.js';
import { projectFactory } from './project-factory.js';

const db = createDatabase();
afterAll(() => db.destroy());

describe('the twin of production', () => {
  it('has the mirrored object models and prompts', async () => {
    const models = await db.selectFrom('public.object_models').select('id').execute();
    expect(models.length).toBeGreaterThan(0);
    expect(await renderPrompt(db, 'prompt 4', { topic: 'tests', tone: 'calm' })).toBe(
      'Write about tests in calm tone.',
    );
  });

  it('holds only the seed data in structure-only tables', async () => {
    const clients = await db.selectFrom('public.clients').select('slug').execute();
    expect(clients.map((client) => client.slug)).toEqual(['acme']);
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

  it('injects the connection details without printing the password', () => {
    const connection = inject('pgtwin');
    expect(connection.database).toBe(process.env.TEST_DB_NAME);
    expect(String(connection)).not.toContain(connection.password);
    expect(JSON.stringify(connection)).not.toContain(connection.password);
  });
});
