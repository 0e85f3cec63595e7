import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { enableIsolation, type Isolation } from '../../src/isolation/index.js';
import { adminQuery, useScratch } from '../helpers/databases.js';
import { observe } from '../isolation/observer.js';

const scratch = useScratch('endpoint');
let url: string;
let isolation: Isolation;
let endpointUrl: string;
let sql: postgres.Sql;

beforeAll(async () => {
  url = (await scratch.database()).url;
  await adminQuery('CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE)', [], url);
  isolation = await enableIsolation({ connectionString: url, endpoint: true, detectLeaks: false });
  const target = new URL(url);
  target.hostname = isolation.endpoint!.host;
  target.port = String(isolation.endpoint!.port);
  endpointUrl = target.toString();
  sql = postgres(endpointUrl, {
    max: 2,
    onnotice: () => undefined,
    debug: (c, q) => process.env.EPDEBUG && console.log('Q', c, q.slice(0, 60)),
  });
});
beforeEach(() => isolation.begin());
afterEach(() => isolation.rollback());
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await isolation?.close();
});

describe('wire endpoint', () => {
  it('runs postgres.js inside the test transaction, shared with pg', async () => {
    await sql`INSERT INTO items (name) VALUES ('wire')`;
    const pgClient = new pg.Client({ connectionString: url });
    await pgClient.connect();
    const { rows } = await pgClient.query("SELECT count(*)::int AS n FROM items WHERE name = 'wire'");
    await pgClient.end();
    expect(rows[0].n).toBe(1);
    await pgClient.end().catch(() => undefined);
    const [row] = await sql`SELECT count(*)::int AS n FROM items WHERE name = ${'wire'}`;
    expect(row!.n).toBe(1);
  });
  it('and it is rolled back', async () => {
    const [row] = await sql`SELECT count(*)::int AS n FROM items WHERE name = ${'wire'}`;
    expect(row!.n).toBe(0);
    expect(
      (await observe<{ n: number }>(url, "SELECT count(*)::int AS n FROM items WHERE name = 'wire'"))[0]!.n,
    ).toBe(0);
  });
  it('errors and continues', async () => {
    await sql`INSERT INTO items (name) VALUES ('dup')`;
    await expect(sql`INSERT INTO items (name) VALUES ('dup')`).rejects.toMatchObject({ code: '23505' });
    await sql`INSERT INTO items (name) VALUES ('after')`;
    const [row] = await sql`SELECT count(*)::int AS n FROM items`;
    expect(row!.n).toBe(2);
  });
  it('transactions', async () => {
    await sql.begin(async (tx) => {
      await tx`INSERT INTO items (name) VALUES ('tx1')`;
      await tx
        .savepoint(async (sp) => {
          await sp`INSERT INTO items (name) VALUES ('sp1')`;
          throw new Error('no');
        })
        .catch(() => undefined);
    });
    await expect(
      sql.begin(async (tx) => {
        await tx`INSERT INTO items (name) VALUES ('tx2')`;
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    const rows = await sql`SELECT name FROM items ORDER BY name`;
    expect(rows.map((r) => r.name)).toEqual(['tx1']);
  });
  it('pipelines', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => sql`INSERT INTO items (name) VALUES (${`p${i}`}) RETURNING id`),
    );
    expect(results).toHaveLength(20);
    const [row] = await sql`SELECT count(*)::int AS n FROM items`;
    expect(row!.n).toBe(20);
  });
  it('copy', async () => {
    const writable = await sql`COPY items (name) FROM STDIN`.writable();
    writable.write('c1\nc2\n');
    writable.end();
    await new Promise((resolve, reject) => writable.on('finish', resolve).on('error', reject));
    const readable = await sql`COPY (SELECT name FROM items ORDER BY name) TO STDOUT`.readable();
    let out = '';
    for await (const chunk of readable) out += chunk.toString();
    expect(out).toBe('c1\nc2\n');
  });
});
