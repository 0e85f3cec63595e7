import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContentgenProduction } from '../../fixtures/contentgen/index.js';
import {
  cloneStructure,
  compareSchemas,
  renderSchemaDiff,
  structureFingerprint,
  type StructureSnapshot,
} from '../../src/structure/index.js';
import { useScratch } from '../helpers/databases.js';

const scratch = useScratch('compare');
const clients: pg.Client[] = [];
let source: pg.Client;
let clone: pg.Client;
let production: StructureSnapshot;

async function open(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  clients.push(client);
  return client;
}

beforeAll(async () => {
  source = await open((await scratch.database('prod')).url);
  clone = await open((await scratch.database('test')).url);
  await createContentgenProduction(source, { data: false });
  production = await cloneStructure(source, clone);
});

afterAll(async () => {
  for (const client of clients) await client.end();
});

describe('compareSchemas and structureFingerprint', () => {
  it('find a database and its clone identical', async () => {
    const diff = await compareSchemas(source, clone);
    expect(diff).toEqual({ equal: true, missing: [], extra: [], changed: [] });
    expect(renderSchemaDiff(diff)).toBe('Structures are identical (expected = actual).');
    expect(await structureFingerprint(clone)).toBe(await structureFingerprint(production));
    expect(await structureFingerprint(production)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('survive a JSON round trip of the snapshot', async () => {
    const copy = JSON.parse(JSON.stringify(production)) as StructureSnapshot;
    expect(await structureFingerprint(copy)).toBe(await structureFingerprint(production));
    expect((await compareSchemas(production, copy)).equal).toBe(true);
  });

  // The cases run in order, each change on top of the earlier ones; every one must be reported and must
  // move the fingerprint to a value not seen before.
  const changes: {
    what: string;
    sql: string;
    expect: (diff: Awaited<ReturnType<typeof compareSchemas>>) => void;
  }[] = [
    {
      what: 'an added column',
      sql: 'ALTER TABLE public.clients ADD COLUMN vat_id text',
      expect: (diff) => {
        const change = diff.changed.find((d) => d.key === 'table public.clients')!;
        expect(change.expected).not.toContain('vat_id');
        expect(change.actual).toContain('vat_id text');
      },
    },
    {
      what: 'a changed default',
      sql: "ALTER TABLE public.projects ALTER COLUMN locale SET DEFAULT 'en'",
      expect: (diff) => {
        const change = diff.changed.find((d) => d.key === 'table public.projects')!;
        expect(change.expected).toContain('locale text DEFAULT public.default_locale() NOT NULL');
        expect(change.actual).toContain("locale text DEFAULT 'en'::text NOT NULL");
      },
    },
    {
      what: 'a dropped index',
      sql: 'DROP INDEX project_beta.content_entries_title_idx',
      expect: (diff) =>
        expect(diff.missing.map((d) => d.key)).toContain(
          'index project_beta.content_entries.content_entries_title_idx',
        ),
    },
    {
      what: 'a changed function body',
      sql: "CREATE OR REPLACE FUNCTION public.default_locale() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'de-DE' $$",
      expect: (diff) => {
        const change = diff.changed.find((d) => d.key === 'function public.default_locale()')!;
        expect(change.expected).toContain('en-US');
        expect(change.actual).toContain("SELECT 'de-DE'");
      },
    },
    {
      what: 'an extra table in a project schema',
      sql: 'CREATE TABLE project_alpha.scratch_notes (id int PRIMARY KEY, note text)',
      expect: (diff) =>
        expect(diff.extra.map((d) => d.key)).toEqual(
          expect.arrayContaining([
            'table project_alpha.scratch_notes',
            'constraint project_alpha.scratch_notes.scratch_notes_pkey',
          ]),
        ),
    },
  ];

  const fingerprints: string[] = [];
  it.each(changes.map((change, index) => [change.what, index] as const))(
    'detect %s',
    async (_what, index) => {
      if (fingerprints.length === 0) fingerprints.push(await structureFingerprint(production));
      await clone.query(changes[index]!.sql);
      const fingerprint = await structureFingerprint(clone);
      expect(fingerprints).not.toContain(fingerprint);
      fingerprints.push(fingerprint);
      const diff = await compareSchemas(production, clone);
      expect(diff.equal).toBe(false);
      changes[index]!.expect(diff);
    },
  );

  it('renders differences as readable text', async () => {
    const text = renderSchemaDiff(await compareSchemas(production, clone), {
      labels: { expected: 'production', actual: 'test' },
    });
    expect(text).toContain('changed, 1 missing, 2 extra (production → test)');
    expect(text).toContain('~ changed table public.projects');
    expect(text).toMatch(/ {2}- {5}locale text DEFAULT public\.default_locale\(\) NOT NULL,/);
    expect(text).toMatch(/ {2}\+ {5}locale text DEFAULT 'en'::text NOT NULL,/);
    expect(text).toContain('- missing in test: index project_beta.content_entries.content_entries_title_idx');
    expect(text).toContain('+ extra in test: table project_alpha.scratch_notes');
  });
});
