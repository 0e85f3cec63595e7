import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from './api-server.js';

let server: ApiServer;
// The test checks the database directly, in the same test transaction as the server's writes.
const db = new pg.Pool({ connectionString: process.env.TEST_DATABASE_URL });

beforeAll(async () => {
  server = await startApiServer();
});
afterAll(async () => {
  await server?.stop();
  await db.end();
});

const projectSlugs = async () =>
  (await db.query<{ slug: string }>('SELECT slug FROM public.projects ORDER BY slug')).rows.map(
    (row) => row.slug,
  );

describe('the projects API in another process', () => {
  it('creates a project through the API', async () => {
    const response = await fetch(`${server.url}/projects`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientSlug: 'acme', slug: 'from-api', name: 'From the API' }),
    });
    expect(response.status).toBe(201);
    expect(await projectSlugs()).toEqual(['docs', 'from-api', 'launch']);
  });

  it('sees a row the test wrote itself', async () => {
    await db.query(
      "INSERT INTO public.projects (client_id, slug, name) SELECT id, 'from-test', 'From the test' FROM public.clients WHERE slug = 'acme'",
    );
    const response = await fetch(`${server.url}/projects`);
    expect(await response.json()).toEqual(['docs', 'from-test', 'launch']);
  });

  it('rolls both back before the next test', async () => {
    const response = await fetch(`${server.url}/projects`);
    expect(await response.json()).toEqual(['docs', 'launch']);
    expect(await projectSlugs()).toEqual(['docs', 'launch']);
  });
});
