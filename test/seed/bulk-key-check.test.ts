import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { SeedError } from '../../src/errors.js';
import { loadSeedData } from '../../src/seed/index.js';
import { adminQuery, databaseUrl, useScratch } from '../helpers/databases.js';
import { useContentgenDatabases } from './contentgen-database.js';

// Seeds write with per-row foreign-key triggers off and check each key once per chunk (BulkKeyCheck); these
// tests pin down that nothing but speed differs from PostgreSQL's own checks.
// Roles first: after-hooks run in reverse, and a role goes only once the databases holding its grants have.
const roles = useScratch('seedkeys');
const databases = useContentgenDatabases('seedkeys');
const directory = await mkdtemp(path.join(os.tmpdir(), 'pgtwin-keys-'));
afterAll(() => rm(directory, { recursive: true, force: true }));

async function seedFile(name: string, document: unknown): Promise<string> {
  const file = path.join(directory, name);
  await writeFile(file, JSON.stringify(document, null, 2));
  return file;
}

const entries = (count: number, objectModel: unknown, slug = 'acme') => ({
  'public.clients': [{ $key: 'acme', name: 'Acme', slug }],
  'public.projects': [{ $key: 'demo', slug, name: 'Demo', client_id: { $ref: 'public.clients.acme' } }],
  'project_alpha.content_entries': [
    { $count: count, project_id: { $ref: 'public.projects.demo' }, object_model_id: 2 },
    {
      title: 'The odd one',
      slug: 'odd',
      project_id: { $ref: 'public.projects.demo' },
      object_model_id: objectModel,
    },
  ],
});

async function count(client: pg.ClientBase, table: string): Promise<number> {
  return (await client.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;
}

describe('foreign keys of seed rows', () => {
  test('a key with no referenced row among many good ones is blamed on its row, with the constraint, and nothing loads', async () => {
    const { client } = await databases.fresh();
    const file = await seedFile('missing-key.json', entries(500, 424242));

    const error = await loadSeedData(client, file).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SeedError);
    expect((error as SeedError).path).toBe('$["project_alpha.content_entries"][1]');
    expect((error as SeedError).constraint).toBe('content_entries_object_model_id_fkey');
    expect((error as SeedError).message).toMatch(
      /Key \(object_model_id\)=\(424242\) is not present in table "object_models"/,
    );
    expect(await count(client, 'project_alpha.content_entries')).toBe(0);
    expect(await count(client, 'public.clients')).toBe(0);
  });

  test('referenced rows are locked until the seed commits, as PostgreSQL locks them', async () => {
    const { name, client } = await databases.fresh();
    const file = await seedFile('locks.json', entries(50, 1));
    await client.query('BEGIN');
    await loadSeedData(client, file, { inTransaction: true });

    const other = new pg.Client({ connectionString: databaseUrl(name) });
    await other.connect();
    try {
      await other.query(`SET lock_timeout = '200ms'`);
      const deleting = other.query('DELETE FROM public.object_models WHERE id = 1');
      await expect(deleting).rejects.toMatchObject({ code: '55P03' });
    } finally {
      await other.end();
      await client.query('ROLLBACK');
    }
  });

  test("a table's own INSERT triggers still fire", async () => {
    const { client } = await databases.fresh();
    await client.query(`
      CREATE FUNCTION public.shout() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.title := upper(NEW.title); RETURN NEW; END $$;
      CREATE TRIGGER shout BEFORE INSERT ON project_alpha.content_entries FOR EACH ROW EXECUTE FUNCTION public.shout()`);
    const file = await seedFile('trigger.json', entries(3, 1));

    await loadSeedData(client, file);

    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM project_alpha.content_entries WHERE title = upper(title)`,
    );
    expect(rows[0].n).toBe(4);
  });

  test('a deferrable unique constraint still rejects a duplicate', async () => {
    const { client } = await databases.fresh();
    await client.query(
      'ALTER TABLE public.clients ADD CONSTRAINT clients_name_key UNIQUE (name) DEFERRABLE INITIALLY DEFERRED',
    );
    const file = await seedFile('deferred-unique.json', {
      'public.clients': [
        { name: 'Twin', slug: 'one' },
        { name: 'Twin', slug: 'two' },
      ],
    });

    const error = await loadSeedData(client, file).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SeedError);
    expect((error as SeedError).constraint).toBe('clients_name_key');
    expect(await count(client, 'public.clients')).toBe(0);
  });

  test('a user who may not switch triggers off loads with the ordinary checks, which still catch a bad key', async () => {
    const { name } = await databases.fresh();
    const role = roles.roleName('plain');
    // BYPASSRLS: the fixture's projects table has row-level security for the application's sessions.
    await adminQuery(`CREATE ROLE "${role}" LOGIN BYPASSRLS`);
    const owner = new pg.Client({ connectionString: databaseUrl(name) });
    await owner.connect();
    try {
      await owner.query(`
        GRANT USAGE ON SCHEMA public, project_alpha TO "${role}";
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, project_alpha TO "${role}";
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public, project_alpha TO "${role}"`);
    } finally {
      await owner.end();
    }
    const client = new pg.Client({ connectionString: databaseUrl(name, role) });
    await client.connect();
    try {
      const denied = await client
        .query('SET session_replication_role = replica')
        .catch((caught: unknown) => caught);
      expect(denied).toMatchObject({ code: '42501' });

      const good = await loadSeedData(client, await seedFile('plain-good.json', entries(20, 1)));
      expect(good.rows).toBe(23);
      const bad = await loadSeedData(
        client,
        await seedFile('plain-bad.json', entries(20, 424242, 'other')),
      ).catch((caught: unknown) => caught);
      expect((bad as SeedError).constraint).toBe('content_entries_object_model_id_fkey');
      expect(await count(client, 'project_alpha.content_entries')).toBe(21);
    } finally {
      await client.end();
    }
  });
});
