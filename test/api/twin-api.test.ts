import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DatabaseSyncManager,
  DBOperator,
  MirrorPolicyError,
  ProductionGuardError,
  SchemaSetup,
  provisionTestDatabase,
  type ResolvedConfig,
} from 'pgtwin';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { testConfig } from '../helpers/config.js';
import { useScratch } from '../helpers/databases.js';

const scratch = useScratch('api');
const data = path.join(import.meta.dirname, 'data');
let config: ResolvedConfig;

beforeAll(async () => {
  const production = await scratch.database('prod');
  await createContentgenProduction(production.url, { data: FIXTURE_SIZES.tiny });
  config = await testConfig({
    production: { database: production.name },
    test: { database: scratch.databaseName('twin'), user: scratch.roleName('runner'), password: 'pw' },
    seeds: path.join(data, 'seed.json'),
  });
  await provisionTestDatabase(config);
});

describe('DatabaseSyncManager, DBOperator and SchemaSetup on the contentgen fixture', () => {
  it('clones, mirrors, seeds and compares equal to production', async () => {
    await using sync = new DatabaseSyncManager({ config });
    await sync.cloneStructure({ source: 'production', target: 'test' });
    const synced = await sync.syncTables({ sourceDb: 'production', targetDb: 'test' });
    expect(synced.tables.map((t) => t.table).sort()).toEqual(['public.object_models', 'public.prompts']);
    expect((await sync.compareSchemas()).equal).toBe(true);
    const drift = await sync.compareMirror();
    expect(drift.tables.every((table) => table.same)).toBe(true);

    await using db = new DBOperator({ testMode: 'e2e', config });
    const seeded = await db.loadSeedData();
    expect(seeded?.tables).toMatchObject({ 'public.clients': 1, 'public.projects': 4 });
    expect(await db.count('public.llm_usage')).toBe(0);
    expect(await db.count('project_alpha.content_entries')).toBe(0);
    expect(await db.tableExists('project_demo.content_entries')).toBe(true);
  });

  it('refuses to mirror a structure-only table, and to copy towards production', async () => {
    await using sync = new DatabaseSyncManager({ config });
    await expect(
      sync.syncTables({ tables: ['public.projects'], allowUnmirrored: true }),
    ).rejects.toBeInstanceOf(MirrorPolicyError);
    await expect(sync.cloneStructure({ source: 'test', target: 'production' })).rejects.toThrow(
      /copies from 'production' to 'test' only/,
    );
  });

  it('resets the test database to exactly the seeded state', async () => {
    await using db = new DBOperator({ testMode: 'e2e', config });
    await db.resetTestDatabase();
    const before = await db.many('SELECT id, slug FROM public.projects ORDER BY id');
    await db.query(
      `INSERT INTO public.projects (client_id, slug, name) SELECT id, 'extra', 'Extra' FROM public.clients LIMIT 1`,
    );
    await db.query('DELETE FROM public.prompts WHERE id IN (SELECT id FROM public.prompts LIMIT 2)');
    await db.query('CREATE SCHEMA project_scratch');
    await db.resetTestDatabase();
    expect(await db.many('SELECT id, slug FROM public.projects ORDER BY id')).toEqual(before);
    expect(await db.tableExists('project_scratch.anything')).toBe(false);
    expect((await db.many(`SELECT 1 FROM pg_namespace WHERE nspname = 'project_scratch'`)).length).toBe(0);
    await using sync = new DatabaseSyncManager({ config });
    expect((await sync.compareMirror()).tables.every((table) => table.same)).toBe(true);
  });

  it('refuses seeding and resetting through a production connection', async () => {
    await using production = new DBOperator({ config });
    await expect(production.loadSeedData()).rejects.toBeInstanceOf(ProductionGuardError);
    await expect(production.resetTestDatabase()).rejects.toThrow(/connection is to production/);
    await expect(new SchemaSetup({ config }).ensurePublicSchema()).rejects.toBeInstanceOf(
      ProductionGuardError,
    );
  });
});

describe('SchemaSetup from the application schema scripts', () => {
  it('builds the schema from .sql files once and skips the same files the next time', async () => {
    const scripted = await testConfig({
      production: { database: config.production.database },
      test: { database: scratch.databaseName('scripted'), user: config.test.user, password: 'pw' },
      schema: { scripts: path.join(data, 'schema') },
    });
    await provisionTestDatabase(scripted);
    const setup = new SchemaSetup({ testMode: 'e2e', config: scripted });
    const first = await setup.ensurePublicSchema();
    expect(first.source).toBe('scripts');
    expect(first.files.map((file) => path.basename(file))).toEqual(['001_tables.sql', '002_project.sql']);
    expect(await setup.ensurePublicSchema()).toEqual({ source: 'unchanged', files: [] });
    await using db = new DBOperator({ testMode: 'e2e', config: scripted });
    expect(await db.tableExists('project_alpha.content_entries')).toBe(true);
    expect(await db.tableExists('public.llm_usage')).toBe(false);
  });
});
