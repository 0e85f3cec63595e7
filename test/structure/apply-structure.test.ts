import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContentgenProduction } from '../../fixtures/contentgen/index.js';
import { StructureApplyError, UnsupportedObjectError } from '../../src/errors.js';
import {
  applyStructure,
  cloneStructure,
  compareSchemas,
  readStructure,
  structureFingerprint,
  type StructureSnapshot,
} from '../../src/structure/index.js';
import { useScratch } from '../helpers/databases.js';

const scratch = useScratch('apply');
const clients: pg.Client[] = [];
let production: pg.Client;
let snapshot: StructureSnapshot;

async function open(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  clients.push(client);
  return client;
}

async function freshTarget(label: string): Promise<pg.Client> {
  return open((await scratch.database(label)).url);
}

/** Every relation, type and function of the user schemas, to show a database was not touched. */
async function inventory(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
     UNION ALL SELECT 'schema ' || nspname FROM pg_namespace ORDER BY 1`,
  );
  return rows.map((row) => row.name);
}

beforeAll(async () => {
  production = await freshTarget('prod');
  await createContentgenProduction(production, { data: false });
  snapshot = await readStructure(production);
});

afterAll(async () => {
  for (const client of clients) await client.end();
});

describe('applyStructure', () => {
  it('creates every object kind in a working form', async () => {
    const test = await freshTarget('kinds');
    await applyStructure(test, JSON.parse(JSON.stringify(snapshot)) as StructureSnapshot);
    const kinds = new Set(snapshot.objects.map((o) => o.kind));
    expect([...kinds].sort()).toEqual(
      [
        'comment',
        'constraint',
        'extension',
        'foreign key',
        'function',
        'index',
        'materialized view',
        'policy',
        'row security',
        'schema',
        'sequence',
        'sequence ownership',
        'table',
        'trigger',
        'type',
        'view',
      ].sort(),
    );

    const one = async (sql: string) => (await test.query(sql)).rows[0];
    await test.query(`INSERT INTO public.clients (name, slug, email) VALUES ('A', 'a', 'X@Example.com')`);
    // citext extension type, identity, a default calling a function, an enum default.
    expect(await one(`SELECT id, email = 'x@example.com' AS ci FROM public.clients`)).toEqual({
      id: '1',
      ci: true,
    });
    await test.query(`INSERT INTO public.projects (client_id, slug, name) VALUES (1, 'alpha', 'Alpha')`);
    expect(await one(`SELECT id, locale, active_until FROM public.projects`)).toMatchObject({
      id: '100',
      locale: 'en-US',
    });
    // Domain check and a check constraint calling a function.
    await expect(
      test.query(`INSERT INTO public.projects (client_id, slug, name) VALUES (1, 'Not A Slug', 'x')`),
    ).rejects.toThrow(/slug_format/);
    await test.query(`INSERT INTO public.object_models (name, json_schema) VALUES ('m', '{}')`);
    expect(await one(`SELECT id, revision FROM public.object_models`)).toEqual({ id: 1, revision: '1000' });
    await expect(
      test.query(`INSERT INTO public.prompts (object_model_id, name, template) VALUES (1, 'p', '{{ broken')`),
    ).rejects.toThrow(/prompts_template_valid/);
    await test.query(
      `INSERT INTO public.prompts (object_model_id, name, template) VALUES (1, 'p', 'Hi {{name}}')`,
    );
    // Generated columns and the GIN-indexed tsvector; the identity starts at 1000 (the rejected row took it).
    expect(
      await one(`SELECT id, template_length, search @@ 'hi'::tsquery AS found FROM public.prompts`),
    ).toEqual({
      id: 1001,
      template_length: 11,
      found: true,
    });
    // Partition routing, composite type, domain default.
    await test.query(
      `INSERT INTO public.llm_usage (project_id, provider, model, tokens, cost, used_at)
       VALUES (100, 'openai', 'm', ROW(1, 2), 0.5, '2024-02-10'), (100, 'local', 'm', NULL, 1, '2026-01-01')`,
    );
    expect(
      (await test.query(`SELECT tableoid::regclass::text AS p FROM public.llm_usage ORDER BY used_at`)).rows,
    ).toEqual([{ p: 'llm_usage_2024_02' }, { p: 'llm_usage_default' }]);
    // Deferrable cross-schema key: a missing project is only reported at commit.
    await test.query('BEGIN');
    await test.query(
      `INSERT INTO project_alpha.content_entries (project_id, object_model_id, slug, title) VALUES (999, 1, 's', 't')`,
    );
    await expect(test.query('COMMIT')).rejects.toThrow(/content_entries_project_id_fkey/);
    // Trigger keeps updated_at, view over table, materialized view left unpopulated.
    await test.query(
      `INSERT INTO project_beta.content_entries (project_id, object_model_id, slug, title, status, updated_at)
       VALUES (100, 1, 'e', 'E', 'published', '2000-01-01')`,
    );
    await test.query(`UPDATE project_beta.content_entries SET title = 'E2'`);
    expect(
      await one(`SELECT updated_at > '2020-01-01' AS touched FROM project_beta.content_entries`),
    ).toEqual({ touched: true });
    expect(await one(`SELECT count(*)::int AS n FROM project_beta.published_entries`)).toEqual({ n: 1 });
    expect(
      await one(
        `SELECT relispopulated FROM pg_class WHERE oid = 'project_beta.entry_status_counts'::regclass`,
      ),
    ).toEqual({ relispopulated: false });
    // Row-level security, policies and comments.
    expect(
      (
        await test.query(
          `SELECT c.relname, c.relrowsecurity, (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
           FROM pg_class c WHERE c.oid IN ('public.projects'::regclass, 'project_alpha.content_entries'::regclass) ORDER BY 1`,
        )
      ).rows,
    ).toEqual([
      { relname: 'content_entries', relrowsecurity: true, policies: 1 },
      { relname: 'projects', relrowsecurity: true, policies: 1 },
    ]);
    expect(await one(`SELECT obj_description('public.llm_usage'::regclass, 'pg_class') AS c`)).toEqual({
      c: 'Token usage and cost per generator call, partitioned by month',
    });
    // A procedure and a BEGIN ATOMIC function that depends on a table.
    await test.query(`CALL public.create_project_schema('gamma')`);
    expect(await one(`SELECT public.project_count()::int AS n`)).toEqual({ n: 1 });
  });

  it('refuses to create over existing objects without replace, leaving the target as it was', async () => {
    const test = await freshTarget('again');
    await applyStructure(test, snapshot);
    await test.query('CREATE TABLE public.only_in_test (id int)');
    const before = await inventory(test);
    const error = await applyStructure(test, snapshot).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StructureApplyError);
    expect((error as StructureApplyError).message).toMatch(/already exists.*replace: true/s);
    expect(await inventory(test)).toEqual(before);
  });

  it('replaces the selected schemas and keeps extra project schemas of the target', async () => {
    const test = await freshTarget('replace');
    await applyStructure(test, snapshot);
    await test.query('CREATE SCHEMA project_zeta; CREATE TABLE project_zeta.notes (id int)');
    await test.query('ALTER TABLE public.clients ADD COLUMN stale text');
    await cloneStructure(production, test, { replace: true });
    expect(await structureFingerprint(test)).not.toBe(await structureFingerprint(snapshot)); // project_zeta
    expect((await compareSchemas(snapshot, test)).extra.map((d) => d.key)).toEqual([
      'schema project_zeta.project_zeta',
      'table project_zeta.notes',
    ]);
    expect(await structureFingerprint(test, { schemas: ['public', 'project_alpha', 'project_beta'] })).toBe(
      await structureFingerprint(snapshot),
    );
  });
});

describe('unsupported objects', () => {
  it('are reported by schema, name and kind before anything is written', async () => {
    const source = await freshTarget('unsupported');
    await createContentgenProduction(source, { data: false });
    await source.query(`
      CREATE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
      CREATE EVENT TRIGGER log_ddl ON ddl_command_end EXECUTE FUNCTION public.log_ddl();
      CREATE EXTENSION file_fdw WITH SCHEMA public;
      CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
      CREATE FOREIGN TABLE project_alpha.imports (line text) SERVER files OPTIONS (filename '/dev/null');
      CREATE RULE no_delete AS ON DELETE TO public.clients DO INSTEAD NOTHING;
    `);
    const target = await freshTarget('untouched');
    const before = await inventory(target);

    const error = await cloneStructure(source, target).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedObjectError);
    expect((error as UnsupportedObjectError).objects).toEqual([
      { schema: null, name: 'log_ddl', kind: 'event trigger' },
      { schema: 'project_alpha', name: 'imports', kind: 'foreign table' },
      { schema: 'public', name: 'clients.no_delete', kind: 'rule' },
    ]);
    expect((error as Error).message).toContain('foreign table project_alpha.imports');
    expect(await inventory(target)).toEqual(before);
  });
});
