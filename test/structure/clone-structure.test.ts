import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { cloneStructure, readStructure, type StructureSnapshot } from '../../src/structure/index.js';
import { useScratch } from '../helpers/databases.js';
import { dumpDifference, normaliseDump, normalisedSchemaDump } from './normalise-dump.js';

const scratch = useScratch('clone');
const SCHEMAS = ['project_alpha', 'project_beta', 'public'];
const clients: pg.Client[] = [];
let source: { url: string; client: pg.Client };

async function open(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  clients.push(client);
  return client;
}

beforeAll(async () => {
  const db = await scratch.database('prod');
  source = { url: db.url, client: await open(db.url) };
  await createContentgenProduction(source.client, { data: FIXTURE_SIZES.tiny });
});

afterAll(async () => {
  for (const client of clients) await client.end();
});

describe('cloneStructure', () => {
  let clone: { url: string; client: pg.Client };
  let snapshot: StructureSnapshot;

  beforeAll(async () => {
    const db = await scratch.database('test');
    clone = { url: db.url, client: await open(db.url) };
    snapshot = await cloneStructure(source.client, clone.client, {
      selection: { schemas: ['public', 'project_*'] },
    });
  });

  it('gives a clone whose schema-only pg_dump equals the source after normalisation', async () => {
    const [expected, actual] = await Promise.all([
      normalisedSchemaDump(source.url, SCHEMAS),
      normalisedSchemaDump(clone.url, SCHEMAS),
    ]);
    expect(dumpDifference(expected, actual)).toEqual([]);
    expect(expected.length).toBeGreaterThan(100);
  });

  it('gives the same pg_dump when re-cloning over an existing clone with replace', async () => {
    const db = await scratch.database('reclone');
    const target = await open(db.url);
    await cloneStructure(source.client, target);
    await target.query(
      'ALTER TABLE public.clients ADD COLUMN stale text; DROP INDEX public.prompts_search_idx',
    );
    await cloneStructure(source.client, target, { replace: true });
    const [expected, actual] = await Promise.all([
      normalisedSchemaDump(source.url, SCHEMAS),
      normalisedSchemaDump(db.url, SCHEMAS),
    ]);
    expect(dumpDifference(expected, actual)).toEqual([]);
  });

  it('reads the clone back to the same snapshot', async () => {
    const again = await readStructure(clone.client, { schemas: ['public', 'project_*'] });
    expect(again.objects).toEqual(snapshot.objects);
    expect(again.tables).toEqual(snapshot.tables);
  });
});

describe('normaliseDump', () => {
  const dump = (column: string) =>
    [
      '-- PostgreSQL database dump',
      'SET statement_timeout = 0;',
      '\\restrict abc123',
      '--',
      '-- Name: t; Type: TABLE; Schema: public; Owner: -',
      '--',
      '',
      `CREATE TABLE public.t (${column});`,
      '-- Name: a; Type: TABLE; Schema: public; Owner: -',
      'CREATE TABLE public.a (id integer);',
    ].join('\n');

  it('ignores order, banners and comments but not a changed statement', () => {
    expect(normaliseDump(dump('id integer'))).toEqual([
      '-- a; Type: TABLE; Schema: public; Owner: -\nCREATE TABLE public.a (id integer);',
      '-- t; Type: TABLE; Schema: public; Owner: -\nCREATE TABLE public.t (id integer);',
    ]);
    expect(dumpDifference(normaliseDump(dump('id integer')), normaliseDump(dump('id bigint')))).toEqual([
      '- -- t; Type: TABLE; Schema: public; Owner: -\nCREATE TABLE public.t (id integer);',
      '+ -- t; Type: TABLE; Schema: public; Owner: -\nCREATE TABLE public.t (id bigint);',
    ]);
  });
});
