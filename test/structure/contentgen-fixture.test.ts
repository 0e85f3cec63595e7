import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { readTableCatalog } from '../../src/structure/index.js';
import { useScratch } from '../helpers/databases.js';

const scratch = useScratch('fixture');
const clients: pg.Client[] = [];
let first: pg.Client;
let second: pg.Client;

async function build(label: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: (await scratch.database(label)).url });
  await client.connect();
  clients.push(client);
  await createContentgenProduction(client, { data: FIXTURE_SIZES.tiny });
  return client;
}

/** A hash of every row of every table, in primary-key order, as the row's text form. */
async function contentHashes(client: pg.Client): Promise<Record<string, string>> {
  const tables = await readTableCatalog(client, { schemas: ['public', 'project_*'] });
  const hashes: Record<string, string> = {};
  for (const table of tables.filter((t) => !t.partitioned)) {
    const order = (table.primaryKey ?? table.columns.map((c) => c.name)).map((c) => `"${c}"`).join(', ');
    const { rows } = await client.query<{ h: string; n: number }>(
      `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY ${order}), '')) AS h, count(*)::int AS n FROM ${table.qualifiedName} t`,
    );
    hashes[table.key] = `${rows[0]!.n}:${rows[0]!.h}`;
  }
  return hashes;
}

beforeAll(async () => {
  [first, second] = await Promise.all([build('a'), build('b')]);
});

afterAll(async () => {
  for (const client of clients) await client.end();
});

describe('contentgen fixture', () => {
  it('generates the same rows for the same size', async () => {
    const [a, b] = await Promise.all([contentHashes(first), contentHashes(second)]);
    expect(a).toEqual(b);
    expect(a['project_alpha.content_entries']).toMatch(/^20:/);
    expect(a['public.llm_usage_default']).not.toMatch(/^0:/);
  });

  it('includes the awkward values a faithful copy must keep', async () => {
    const one = async (sql: string) => (await first.query(sql)).rows[0];
    expect(
      await one(
        `SELECT count(*) FILTER (WHERE notes IS NULL)::int AS nulls, count(*) FILTER (WHERE notes = '')::int AS empties FROM public.clients`,
      ),
    ).toEqual({ nulls: 0, empties: 1 });
    expect(
      await one(`SELECT bool_or(body LIKE E'%\\t%') AS tab, bool_or(body LIKE E'%\\n%') AS newline,
        bool_or(body LIKE E'%\\\\\\\\%') AS backslash, bool_or(body LIKE '%🚀%') AS emoji,
        bool_or(body IS NULL) AS null_body, bool_or(published_at = 'infinity') AS infinity,
        bool_or(array_position(tags, NULL) IS NOT NULL) AS null_in_array, bool_or(checksum = ''::bytea) AS empty_bytea
        FROM project_alpha.content_entries`),
    ).toEqual({
      tab: true,
      newline: true,
      backslash: true,
      emoji: true,
      null_body: true,
      infinity: true,
      null_in_array: true,
      empty_bytea: true,
    });
    expect(await one(`SELECT budget::text AS b FROM public.projects WHERE id = 101`)).toEqual({
      b: '1763668414462.0176366842',
    });
    expect(await one(`SELECT active_from::text AS f FROM public.projects WHERE id = 102`)).toEqual({
      f: '-infinity',
    });
  });
});
