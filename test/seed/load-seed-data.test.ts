import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Factory } from 'fishery';
import type pg from 'pg';
import { describe, expect, test } from 'vitest';
import { SeedError } from '../../src/errors.js';
import { clearSeededTables, loadSeedData, loadUserFactories } from '../../src/seed/index.js';
import { readTableCatalog } from '../../src/structure/index.js';
import { useContentgenDatabases } from './contentgen-database.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FULL_SEED = 'test/seed/data/full';
const MIRRORED = ['public.object_models', 'public.prompts'];
const databases = useContentgenDatabases('seedload');

async function rows(client: pg.Client, sql: string): Promise<Record<string, unknown>[]> {
  return (await client.query(sql)).rows;
}

describe('loadSeedData', () => {
  test('loads a directory of seed files in name order, resolving references across files and forward in them', async () => {
    const { client } = await databases.fresh();

    const result = await loadSeedData(client, FULL_SEED, { rootDir: ROOT });

    expect(result.files.map((file) => file.slice(ROOT.length))).toEqual([
      'test/seed/data/full/01-content.json',
      'test/seed/data/full/02-projects.json',
    ]);
    expect(result.createdSchemas).toEqual(['project_demo']);
    expect(result.tables).toEqual({
      'public.clients': 1,
      'public.projects': 4,
      'project_demo.content_entries': 7,
      'public.llm_usage': 1,
    });
    expect(await rows(client, 'SELECT id, name, slug, email FROM public.clients')).toEqual([
      { id: '1', name: 'Acme Corp', slug: 'acme', email: 'ops@acme.test' },
    ]);
    // Identity starts at 100; factory rows get the automatic values, numbered by the table's sequence.
    expect(
      await rows(
        client,
        'SELECT id, client_id, slug, name, settings, tags, budget FROM public.projects ORDER BY id',
      ),
    ).toEqual([
      {
        id: '100',
        client_id: '1',
        slug: 'demo',
        name: 'Demo',
        settings: { tone: 'dry' },
        tags: ['a', 'b'],
        budget: '1234.5000000000',
      },
      { id: '101', client_id: '1', slug: 'slug-2', name: 'name-2', settings: {}, tags: [], budget: null },
      { id: '102', client_id: '1', slug: 'slug-3', name: 'name-3', settings: {}, tags: [], budget: null },
      { id: '103', client_id: '1', slug: 'slug-4', name: 'name-4', settings: {}, tags: [], budget: null },
    ]);
    const entries = await rows(
      client,
      'SELECT id, parent_id, project_id, object_model_id, slug, title, data, tags, status, body FROM project_demo.content_entries ORDER BY id',
    );
    expect(entries.slice(0, 2)).toEqual([
      {
        id: '1',
        parent_id: null,
        project_id: '100',
        object_model_id: 2, // where { name: Article, version: 2 } in the mirrored object_models
        slug: 'hello',
        title: 'Hello',
        data: { blocks: [1, 2] },
        tags: ['news', 'with "quotes"'],
        status: 'published',
        body: 'line one\nline two\twith a tab and a \\ backslash',
      },
      // "column" reads the project's slug; parent_id points at the keyed row above.
      {
        id: '2',
        parent_id: '1',
        project_id: '100',
        object_model_id: 2,
        slug: 'demo',
        title: 'Child',
        data: {},
        tags: null,
        status: 'draft',
        body: null,
      },
    ]);
    expect(entries.slice(2).map((entry) => [entry.slug, entry.title, entry.object_model_id])).toEqual([
      ['slug-3', 'title-3', 3],
      ['slug-4', 'title-4', 3],
      ['slug-5', 'title-5', 3],
      ['slug-6', 'title-6', 3],
      ['slug-7', 'title-7', 3],
    ]);
    expect(
      await rows(
        client,
        'SELECT project_id, prompt_id, provider, model, tokens::text, cost FROM public.llm_usage',
      ),
    ).toEqual([
      {
        project_id: '100',
        prompt_id: 1000,
        provider: 'anthropic',
        model: 'claude\tv2\nsecond line \\N and a \\ backslash',
        tokens: '(10,20)',
        cost: '0.250000',
      },
    ]);
    // The new project schema has the template's (project_alpha's) tables.
    expect(
      await rows(
        client,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'project_demo' ORDER BY 1",
      ),
    ).toEqual(
      await rows(
        client,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'project_alpha' ORDER BY 1",
      ),
    );
  });

  test('a registered factory overrides the automatic one of its table', async () => {
    const { client } = await databases.fresh();
    const factories = await loadUserFactories('test/seed/data/factories.ts', ROOT);

    await loadSeedData(client, FULL_SEED, { rootDir: ROOT, factories });

    expect(await rows(client, 'SELECT slug, name, locale FROM public.projects ORDER BY id')).toEqual([
      { slug: 'demo', name: 'Demo', locale: 'de-DE' },
      { slug: 'custom-2', name: 'Custom project 2', locale: 'de-DE' },
      { slug: 'custom-3', name: 'Custom project 3', locale: 'de-DE' },
      { slug: 'custom-4', name: 'Custom project 4', locale: 'de-DE' },
    ]);
  });

  test('factories of tables the seed does not touch are matched by name; a name matching no table is refused', async () => {
    const { client } = await databases.fresh();
    const file = 'test/seed/data/clients.json';
    const row = Factory.define<Record<string, unknown>>(() => ({}));

    const result = await loadSeedData(client, file, {
      rootDir: ROOT,
      factories: { content_entry: row, llm_usage: row, prompt: row },
    });
    expect(result.rows).toBeGreaterThan(0);

    await expect(
      loadSeedData(client, file, { rootDir: ROOT, factories: { 'public.llm_usage': row } }),
    ).rejects.toThrow(/The factory "public\.llm_usage" matches no table \(did you mean "llm_usage"\?/);
    await expect(loadSeedData(client, file, { rootDir: ROOT, factories: { projcts: row } })).rejects.toThrow(
      /The factory "projcts" matches no table \(did you mean "projects"\?\)/,
    );
  });

  test('clearing the seeded tables and loading again restores exactly the seeded state after a test changed it', async () => {
    const { client } = await databases.fresh();
    await loadSeedData(client, FULL_SEED, { rootDir: ROOT });
    const catalog = await readTableCatalog(client, { schemas: ['public', 'project_*'] });
    // Everything but the timestamps set by now().
    const state = async () => ({
      clients: await rows(client, 'SELECT id, name, slug, email FROM public.clients ORDER BY id'),
      projects: await rows(
        client,
        'SELECT id, client_id, slug, name, settings, tags FROM public.projects ORDER BY id',
      ),
      entries: await rows(
        client,
        'SELECT id, parent_id, project_id, slug, title, data FROM project_demo.content_entries ORDER BY id',
      ),
      usage: await rows(client, 'SELECT * FROM public.llm_usage ORDER BY id'),
      mirrored: await rows(client, 'SELECT id, name, version FROM public.object_models ORDER BY id'),
    });
    const seeded = await state();

    await client.query(`
      INSERT INTO public.clients (name, slug) VALUES ('Intruder', 'intruder');
      UPDATE public.projects SET name = 'Renamed' WHERE slug = 'demo';
      DELETE FROM project_demo.content_entries WHERE title = 'Child';`);
    const cleared = await clearSeededTables(client, catalog, { mirrored: MIRRORED });
    await loadSeedData(client, FULL_SEED, { rootDir: ROOT });

    expect(cleared).toContain('project_demo.content_entries');
    expect(cleared).not.toContain('public.object_models');
    expect(await state()).toEqual(seeded);
  });

  test("loads inside the caller's transaction when told, so rolling that back removes the seed", async () => {
    const { client } = await databases.fresh();

    await client.query('BEGIN');
    const result = await loadSeedData(client, 'test/seed/data/clients.json', {
      rootDir: ROOT,
      inTransaction: true,
    });
    const inside = await rows(client, 'SELECT count(*)::int AS n FROM public.projects');
    await client.query('ROLLBACK');

    expect(result.rows).toBe(3);
    expect(inside).toEqual([{ n: 2 }]);
    expect(await rows(client, 'SELECT count(*)::int AS n FROM public.clients')).toEqual([{ n: 0 }]);
  });

  test('refuses to clear when a mirrored table references a table that would be emptied', async () => {
    const { client } = await databases.fresh();
    const catalog = await readTableCatalog(client, { schemas: ['public', 'project_*'] });

    await expect(clearSeededTables(client, catalog, { mirrored: ['public.llm_usage'] })).rejects.toThrow(
      /The mirrored table public\.llm_usage references public\.projects/,
    );
  });
});

describe('loadSeedData errors', () => {
  const cases: {
    name: string;
    file: string;
    path: string;
    line: number;
    column: number;
    message: RegExp;
    constraint?: string;
  }[] = [
    {
      name: 'an unknown table with the closest name',
      file: 'unknown-table.json',
      path: '$["public.projcts"]',
      line: 3,
      column: 3,
      message: /There is no table public\.projcts \(did you mean "public\.projects"\?\)/,
    },
    {
      name: 'an unknown column with the closest name',
      file: 'unknown-column.json',
      path: '$["public.projects"][1].nmae',
      line: 5,
      column: 22,
      message: /public\.projects has no column "nmae" \(did you mean "name"\?\)/,
    },
    {
      name: 'an unresolved $ref with the closest key',
      file: 'unresolved-ref.json',
      path: '$["public.projects"][0].client_id.$ref',
      line: 3,
      column: 70,
      message: /No row of public\.clients has "\$key": "acm" \(did you mean "acme"\?\)/,
    },
    {
      name: 'a cyclic $ref with the loop',
      file: 'cyclic-ref.json',
      path: '$["project_alpha.content_entries"][0].parent_id.$ref',
      line: 10,
      column: 22,
      message:
        /Cyclic \$ref: project_alpha\.content_entries\.first → project_alpha\.content_entries\.second → project_alpha\.content_entries\.first/,
    },
    {
      name: 'a where lookup matching more than one row',
      file: 'ambiguous-where.json',
      path: '$["project_alpha.content_entries"][0].object_model_id.where',
      line: 10,
      column: 60,
      message: /More than one row of public\.object_models matches \{"name":"Article"\}/,
    },
    {
      name: 'a constraint violation at the row the database rejected, after creating a project schema',
      file: 'duplicate-slug.json',
      path: '$["public.projects"][2]',
      line: 7,
      column: 5,
      message:
        /public\.projects rejected this row: duplicate key value violates unique constraint "projects_slug_key" \(Key \(slug\)=\(same\) already exists\.\)/,
      constraint: 'projects_slug_key',
    },
    {
      name: 'a factory of another table (whose catalog the load had not read)',
      file: 'foreign-factory.json',
      path: '$["public.clients"][0].$factory',
      line: 2,
      column: 24,
      message: /The factory "project" builds rows for public\.projects, not public\.clients/,
    },
    {
      name: 'a missing parent reference naming the column',
      file: 'missing-parent.json',
      path: '$["public.projects"][0]',
      line: 2,
      column: 23,
      message:
        /public\.projects\.client_id references public\.clients and needs a value; .* give "client_id": \{ "\$ref": "public\.clients\.<key>" \}/,
    },
  ];

  const counts = (client: pg.Client) =>
    rows(
      client,
      `SELECT (SELECT count(*)::int FROM public.clients) AS clients, (SELECT count(*)::int FROM public.projects) AS projects,
        (SELECT count(*)::int FROM project_alpha.content_entries) AS entries,
        (SELECT count(*)::int FROM pg_namespace WHERE nspname = 'project_scratch') AS schemas`,
    );

  test.each(cases)(
    'reports $name and loads nothing',
    async ({ file, path: jsonPath, line, column, message, constraint }) => {
      const { client } = await databases.fresh();
      const before = await counts(client);
      const relative = `test/seed/data/bad/${file}`;

      const error = await loadSeedData(client, relative, { rootDir: ROOT }).catch(
        (caught: unknown) => caught,
      );

      expect(error).toBeInstanceOf(SeedError);
      const seedError = error as SeedError;
      expect({
        file: seedError.file,
        path: seedError.path,
        line: seedError.line,
        column: seedError.column,
      }).toEqual({
        file: relative,
        path: jsonPath,
        line,
        column,
      });
      expect(seedError.message).toMatch(message);
      expect(seedError.message.startsWith(`${relative}:${line}:${column} `)).toBe(true);
      expect(seedError.constraint).toBe(constraint);
      expect(await counts(client)).toEqual(before);
    },
  );

  test('reports malformed JSON at its line and column and loads nothing', async () => {
    const { client } = await databases.fresh();
    // Written here rather than kept in data/, where the formatter would refuse it.
    const directory = await mkdtemp(path.join(os.tmpdir(), 'pgtwin-seed-'));
    await writeFile(
      path.join(directory, 'seed.json'),
      '{\n  "public.clients": [\n    { "name": "Acme" "slug": "acme" }\n  ]\n}\n',
    );

    const error = await loadSeedData(client, 'seed.json', { rootDir: directory }).catch(
      (caught: unknown) => caught,
    );
    await rm(directory, { recursive: true });

    expect(error).toMatchObject({ file: 'seed.json', path: '$', line: 3, column: 22 });
    expect((error as SeedError).message).toBe(
      `seed.json:3:22: seed.json is not valid JSON: Expected ',' or '}' after property value but found '"'. Fix the file; nothing was loaded.`,
    );
    expect(await counts(client)).toEqual([{ clients: 0, projects: 0, entries: 0, schemas: 0 }]);
  });

  test('in a statement of a thousand rows, blames the second of two duplicates, as a row-by-row load would', async () => {
    const { client } = await databases.fresh();
    const directory = await mkdtemp(path.join(os.tmpdir(), 'pgtwin-seed-'));
    try {
      const clients = Array.from({ length: 1000 }, (_, index) => ({
        name: `Client ${index}`,
        slug: index === 700 ? 'client-300' : `client-${index}`,
      }));
      const file = path.join(directory, 'duplicates.json');
      await writeFile(file, JSON.stringify({ 'public.clients': clients }, null, 1));

      const error = await loadSeedData(client, file).catch((caught: unknown) => caught);

      expect((error as SeedError).path).toBe('$["public.clients"][700]');
      expect((error as SeedError).constraint).toBe('clients_slug_key');
      expect((await client.query('SELECT count(*)::int AS n FROM public.clients')).rows[0].n).toBe(0);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  test('a missing seed file names the path to fix', async () => {
    const { client } = await databases.fresh();
    await expect(loadSeedData(client, 'tests/data/seed_data.json', { rootDir: ROOT })).rejects.toThrow(
      /Seed file or directory tests\/data\/seed_data\.json does not exist .* change "seeds" in the pgtwin config/,
    );
  });
});
