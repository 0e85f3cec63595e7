import pg from 'pg';
import { afterAll } from 'vitest';
import { createContentgenProduction } from '../../fixtures/contentgen/index.js';
import { adminQuery, databaseUrl, useScratch } from '../helpers/databases.js';

/** The mirrored tables' rows, as the mirror would copy them from production (structure-only tables stay empty). */
const MIRRORED_ROWS = `
INSERT INTO public.object_models (name, version, json_schema) VALUES
  ('Article', 1, '{"type": "object"}'), ('Article', 2, '{"type": "object"}'), ('Recipe', 1, '{"type": "object"}');
INSERT INTO public.prompts (object_model_id, name, template) VALUES (2, 'article', 'Write about {{topic}}');
`;

/**
 * A contentgen twin for seed tests: a template database with the fixture's structure (public, project_alpha,
 * project_beta) and mirrored rows, and a fresh copy of it per test (copying a template is much quicker than
 * running the schema again).
 */
export function useContentgenDatabases(prefix: string) {
  const scratch = useScratch(prefix);
  let template: string | undefined;
  const clients: pg.Client[] = [];
  // Registered after useScratch's, so it runs first (after-hooks run in reverse): clients close before the drop.
  afterAll(() => Promise.all(clients.map((client) => client.end())));

  return {
    /** A new database with the contentgen structure and mirrored rows, and a client connected to it. */
    async fresh(): Promise<{ name: string; client: pg.Client }> {
      if (template === undefined) {
        const { name, url } = await scratch.database('template');
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await createContentgenProduction(client, { data: false });
        await client.query(MIRRORED_ROWS);
        await client.end();
        template = name;
      }
      const name = scratch.databaseName('db');
      await adminQuery(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
      const client = new pg.Client({ connectionString: databaseUrl(name) });
      await client.connect();
      clients.push(client);
      return { name, client };
    },
  };
}
