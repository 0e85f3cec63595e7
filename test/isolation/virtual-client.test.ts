import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IsolationError } from '../../src/errors.js';
import { enableIsolation, type Isolation } from '../../src/isolation/index.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const scratch = useScratch('virtual');
let url: string;
let isolation: Isolation;
const clients: pg.Client[] = [];

async function connected(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  clients.push(client);
  await client.connect();
  return client;
}

beforeAll(async () => {
  url = (await scratch.database()).url;
  await adminQuery('CREATE TABLE notes (id int PRIMARY KEY, body text)', [], url);
  isolation = await enableIsolation({ connectionString: url, detectLeaks: false });
});
beforeEach((context) => isolation.begin(context.task.name));
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.end()));
  await isolation.rollback();
});
afterAll(() => isolation.close());

describe('every query signature of node-pg', () => {
  it('(text, callback), (text, values, callback) and (config, callback)', async () => {
    const client = await connected();
    const viaCallback = (run: (done: (error: Error | null, result: pg.QueryResult) => void) => void) =>
      new Promise<pg.QueryResult>((resolve, reject) =>
        run((error, result) => (error ? reject(error) : resolve(result))),
      );
    expect((await viaCallback((done) => client.query('SELECT 1 AS n', done))).rows).toEqual([{ n: 1 }]);
    expect((await viaCallback((done) => client.query('SELECT $1::int AS n', [2], done))).rows).toEqual([
      { n: 2 },
    ]);
    expect((await viaCallback((done) => client.query({ text: 'SELECT 3 AS n' }, done))).rows).toEqual([
      { n: 3 },
    ]);
  });

  it('rowMode array, named prepared statements and custom type parsers', async () => {
    const client = await connected();
    const arrays = await client.query({ text: 'SELECT 1 AS a, 2 AS b', rowMode: 'array' });
    expect(arrays.rows).toEqual([[1, 2]]);
    expect(arrays.fields.map((field) => field.name)).toEqual(['a', 'b']);
    for (const n of [1, 2]) {
      const named = await client.query({ name: 'twice', text: 'SELECT $1::int * 2 AS n', values: [n] });
      expect(named.rows).toEqual([{ n: n * 2 }]);
    }
    const types = { getTypeParser: () => (value: string) => `parsed:${value}` };
    expect((await client.query({ text: 'SELECT 7 AS n', types })).rows).toEqual([{ n: 'parsed:7' }]);
  });

  it('returns node-pg’s result shapes and error objects', async () => {
    const client = await connected();
    const insert = await client.query('INSERT INTO notes VALUES (1, $1), (2, $1)', ['x']);
    expect(insert).toMatchObject({ command: 'INSERT', rowCount: 2, rows: [] });
    const multi = (await client.query('SELECT 1 AS a; SELECT 2 AS b')) as unknown as pg.QueryResult[];
    expect(multi.map((result) => result.rows)).toEqual([[{ a: 1 }], [{ b: 2 }]]);
    const error = await client.query('INSERT INTO notes VALUES (1)').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(pg.DatabaseError);
    expect(error).toMatchObject({ code: '23505', constraint: 'notes_pkey', table: 'notes' });
  });

  it('runs submittables: pg.Query with row events and a COPY stream', async () => {
    const client = await connected();
    const rows: unknown[] = [];
    const query = client.query(new pg.Query('SELECT generate_series(1, 3) AS n'));
    query.on('row', (row: unknown) => rows.push(row));
    await new Promise((resolve) => query.on('end', resolve));
    expect(rows).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);

    await pipeline(
      Readable.from(['10\tcopied\n', '11\tcopied\n']),
      client.query(copyFrom('COPY notes FROM STDIN')),
    );
    expect((await client.query("SELECT count(*)::int AS n FROM notes WHERE body = 'copied'")).rows[0].n).toBe(
      2,
    );
  });

  it('connects and ends with callbacks and events, as node-pg does', async () => {
    const client = new pg.Client({ connectionString: url });
    const events: string[] = [];
    client.on('connect', () => events.push('connect'));
    client.on('end', () => events.push('end'));
    await new Promise<void>((resolve, reject) =>
      client.connect((error: Error | undefined) => (error ? reject(error) : resolve())),
    );
    await new Promise<void>((resolve) => client.end(() => resolve()));
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(['connect', 'end']);
    await expect(client.query('SELECT 1')).rejects.toThrow('Client was closed and is not queryable');
  });

  it('answers a redundant BEGIN with the server’s warning, as a notice', async () => {
    const client = await connected();
    const notices: string[] = [];
    client.on('notice', (notice) => void notices.push(notice.message ?? ''));
    await client.query('BEGIN');
    expect((await client.query('BEGIN')).command).toBe('BEGIN');
    await client.query('COMMIT');
    expect(notices).toEqual(['there is already a transaction in progress']);
  });
});

describe('transactions of several clients on the one connection', () => {
  it('lets a second client’s transaction begin when the first one’s ends, as a lock would', async () => {
    const [a, b] = [await connected(), await connected()];
    await a.query('BEGIN');
    const second = b.query('BEGIN').then(() => b.query("INSERT INTO notes VALUES (21, 'b')"));
    await a.query("INSERT INTO notes VALUES (20, 'a')");
    await a.query('ROLLBACK');
    await second;
    await b.query('COMMIT');
    const { rows } = await a.query('SELECT id FROM notes WHERE id IN (20, 21) ORDER BY id');
    expect(rows).toEqual([{ id: 21 }]);
  });

  it('fails, naming the test, a transaction that waits on one its own code holds open', async () => {
    const [a, b] = [await connected(), await connected()];
    await a.query('BEGIN');
    const error = await b.query('BEGIN').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IsolationError);
    expect(error).toMatchObject({
      reason: 'transaction-wait',
      test: expect.stringContaining('its own code'),
    });
    await a.query('COMMIT');
    expect((await b.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('keeps, with an explanation, a transaction whose rollback would undo another client’s write', async () => {
    const [a, b] = [await connected(), await connected()];
    await a.query('BEGIN');
    await a.query("INSERT INTO notes VALUES (22, 'a')");
    await b.query("INSERT INTO notes VALUES (23, 'b, inside a')");
    const error = await a.query('ROLLBACK').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IsolationError);
    expect(error).toMatchObject({ reason: 'interleaved-rollback' });
    expect((error as Error).message).toContain('pgtwin.isolation(false)');
    // The state the README states: the transaction ended with its writes kept; the test goes on.
    expect(a.getTransactionStatus()).toBe('I');
    const { rows } = await b.query('SELECT id FROM notes WHERE id IN (22, 23) ORDER BY id');
    expect(rows).toEqual([{ id: 22 }, { id: 23 }]);
    await a.query('BEGIN');
    await a.query("INSERT INTO notes VALUES (24, 'a again')");
    await a.query('ROLLBACK');
    expect((await b.query('SELECT count(*)::int AS n FROM notes WHERE id = 24')).rows[0].n).toBe(0);
  });

  it('rolls back what a client left open when it ends, as closing a connection does', async () => {
    const a = new pg.Client({ connectionString: url });
    await a.connect();
    await a.query('BEGIN');
    await a.query("INSERT INTO notes VALUES (30, 'abandoned')");
    await a.end();
    const b = await connected();
    expect((await b.query('SELECT count(*)::int AS n FROM notes WHERE id = 30')).rows[0].n).toBe(0);
  });

  it('leaves clients of other databases alone', async () => {
    const other = new pg.Client({ connectionString: url.replace(/\/[^/]+$/, '/postgres') });
    await other.connect();
    try {
      expect((await other.query('SELECT current_database() AS db')).rows[0].db).toBe('postgres');
      expect(other.getTransactionStatus()).toBe('I');
    } finally {
      await other.end();
    }
  });
});
