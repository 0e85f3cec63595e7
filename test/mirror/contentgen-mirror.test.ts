import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import {
  compareMirror,
  createDump,
  restoreDump,
  syncTables,
  tableChecksums,
} from '../../src/mirror/index.js';
import { cloneStructure } from '../../src/structure/clone-structure.js';
import { useScratch } from '../helpers/databases.js';
import { ODD_SOURCE_SETTINGS, ODD_TARGET_SETTINGS, connectTo, useTempDirs } from './mirror-databases.js';

const scratch = useScratch('mirror_cg');
const POLICY = {
  mirror: {
    full: ['public.object_models', 'public.prompts'],
    structureOnly: ['public.projects', 'public.clients', 'public.llm_usage'],
  },
  projectSchemas: 'project_*',
};
const MIRRORED = POLICY.mirror.full;
const open: pg.Client[] = [];
const tempDir = useTempDirs();
let production: pg.Client;
let productionWritable: pg.Client;

async function connect(url: string, options: Parameters<typeof connectTo>[1] = {}): Promise<pg.Client> {
  const client = await connectTo(url, options);
  open.push(client);
  return client;
}

/** Every table outside the mirrored ones with its row count, for "never production data" checks. */
async function otherTableCounts(client: pg.Client): Promise<Record<string, number>> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT schemaname || '.' || tablename AS name FROM pg_tables
     WHERE schemaname = 'public' OR schemaname LIKE 'project\\_%' ORDER BY 1`,
  );
  const counts: Record<string, number> = {};
  for (const { name } of rows.filter((row) => !MIRRORED.includes(row.name))) {
    counts[name] = Number((await client.query(`SELECT count(*) AS n FROM ${name}`)).rows[0].n);
  }
  return counts;
}

/** nextval of every sequence a mirrored table's columns draw from; advances them. */
async function nextValues(client: pg.Client): Promise<Record<string, string>> {
  const { rows } = await client.query<{ column: string; next: string }>(
    `SELECT c.table_schema || '.' || c.table_name || '.' || c.column_name AS column,
            nextval(coalesce(pg_get_serial_sequence(c.table_schema || '.' || c.table_name, c.column_name),
                             substring(c.column_default FROM 'nextval\\(''([^'']+)''')))::text AS next
     FROM information_schema.columns c
     WHERE c.table_schema || '.' || c.table_name = ANY($1) AND (c.is_identity = 'YES' OR c.column_default LIKE 'nextval(%')
     ORDER BY 1`,
    [MIRRORED],
  );
  return Object.fromEntries(rows.map((row) => [row.column, row.next]));
}

beforeAll(async () => {
  const { url } = await scratch.database('production');
  await createContentgenProduction(url, { data: FIXTURE_SIZES.small });
  production = await connect(url, { readOnly: true, settings: ODD_SOURCE_SETTINGS });
  productionWritable = await connect(url);
});

afterAll(async () => {
  for (const client of open) await client.end().catch(() => undefined);
});

describe('mirroring the content generator', () => {
  it('makes object_models and prompts identical, leaves every other table without production rows', async () => {
    const { url } = await scratch.database('test');
    const test = await connect(url, { settings: ODD_TARGET_SETTINGS });
    await cloneStructure(production, test);
    await test.query(`CREATE TABLE public.fired (tbl text);
      CREATE FUNCTION public.note_fired() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.fired VALUES (TG_TABLE_NAME); RETURN NEW; END $$;
      CREATE TRIGGER note BEFORE INSERT ON public.object_models FOR EACH ROW EXECUTE FUNCTION public.note_fired();
      CREATE TRIGGER note BEFORE INSERT ON public.prompts FOR EACH ROW EXECUTE FUNCTION public.note_fired();`);

    const result = await syncTables(production, test, { policy: POLICY });
    expect(result.tables.map((t) => t.table)).toEqual(MIRRORED);

    const sums = await tableChecksums(production, MIRRORED);
    expect(await tableChecksums(test, MIRRORED)).toEqual(sums);
    expect(sums['public.prompts']!.rowCount).toBe(FIXTURE_SIZES.small.prompts);
    const others = await otherTableCounts(test);
    expect(Object.keys(others)).toEqual(
      expect.arrayContaining(['public.projects', 'public.llm_usage', 'project_alpha.content_entries']),
    );
    expect(Object.values(others).every((n) => n === 0)).toBe(true); // public.fired too: no trigger ran
    expect(await nextValues(test)).toEqual(await nextValues(productionWritable));
    expect((await compareMirror(production, test, MIRRORED)).same).toBe(true);
  });

  it('restores a dump of it into a fresh database with the same checksums', async () => {
    const dir = await tempDir('pgtwin-cg-dump-');
    await createDump({ source: production, dir, policy: POLICY, gzip: true });
    const { url } = await scratch.database('ci');
    const ci = await connect(url);

    await restoreDump({ dir, target: ci, policy: POLICY });
    expect(await tableChecksums(ci, MIRRORED)).toEqual(await tableChecksums(production, MIRRORED));
    expect(Object.values(await otherTableCounts(ci)).every((n) => n === 0)).toBe(true);
  });
});
