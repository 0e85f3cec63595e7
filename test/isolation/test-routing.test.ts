/**
 * Which transaction a statement runs in: the test whose asynchronous context issued it, else the one test
 * running, else none (it commits). Tests here drive isolation by hand, as the runners' hooks do.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsolationError } from '../../src/errors.js';
import { enableIsolation, type Isolation } from '../../src/isolation/index.js';
import { adminQuery, useScratch } from '../helpers/databases.js';
import { observe } from './observer.js';

const scratch = useScratch('routing');
let url: string;
let early: pg.Client;
let earlyPool: pg.Pool;
let isolation: Isolation;

const committed = async (name: string) =>
  (await observe<{ n: number }>(url, 'SELECT count(*)::int AS n FROM notes WHERE name = $1', [name]))[0]!.n;

beforeAll(async () => {
  url = (await scratch.database()).url;
  await adminQuery('CREATE TABLE notes (id serial PRIMARY KEY, name text NOT NULL UNIQUE)', [], url);
  // Connected before isolation began, as a module-level client or pool used at import time is.
  early = new pg.Client({ connectionString: url });
  await early.connect();
  earlyPool = new pg.Pool({ connectionString: url, max: 2 });
  await earlyPool.query('SELECT 1');
  isolation = await enableIsolation({ connectionString: url, detectLeaks: false, maxConnections: 3 });
});
afterAll(async () => {
  await isolation.close();
  await early.end();
  await earlyPool.end();
});

describe('statements issued outside tests', () => {
  it('run and commit outside the test, even when still queued as the test begins', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    // Issued before the test, not awaited: the sleep holds the connection while the test begins.
    const queued = [
      client.query('SELECT pg_sleep(0.3)'),
      client.query("INSERT INTO notes (name) VALUES ('queued-before-test')"),
    ];
    await isolation.begin('first test');
    await client.query("INSERT INTO notes (name) VALUES ('inside-test')");
    await Promise.all(queued);
    await isolation.rollback();
    expect(await committed('queued-before-test')).toBe(1);
    expect(await committed('inside-test')).toBe(0);
    await client.end();
  });
});

describe('a client connected before isolation began', () => {
  it('runs statements issued inside a test in the test transaction, and commits outside tests', async () => {
    await isolation.begin('pre-connected');
    await early.query("INSERT INTO notes (name) VALUES ('early-client-in-test')");
    await earlyPool.query("INSERT INTO notes (name) VALUES ('early-pool-in-test')");
    const { rows } = await earlyPool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM notes WHERE name LIKE 'early-%-in-test'",
    );
    expect(rows[0]!.n).toBe(2);
    await isolation.rollback();
    expect(await committed('early-client-in-test')).toBe(0);
    expect(await committed('early-pool-in-test')).toBe(0);
    await early.query("INSERT INTO notes (name) VALUES ('early-client-outside')");
    expect(await committed('early-client-outside')).toBe(1);
  });
});

describe('tests begun while one runs (begin, as Jest 30 and Vitest 3 run concurrent tests)', () => {
  it('share its transaction, rolled back after the last of them ends', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await isolation.begin('first of a group');
    await isolation.begin('second of a group');
    await client.query("INSERT INTO notes (name) VALUES ('shared-by-group')");
    await isolation.rollback();
    const count = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM notes WHERE name = 'shared-by-group'",
    );
    expect(count.rows[0]!.n).toBe(1);
    await isolation.rollback();
    expect(await committed('shared-by-group')).toBe(0);
    await client.end();
  });
});

describe('tests running concurrently (runTest)', () => {
  it('each run in a transaction of their own, do not see each other’s rows, and are rolled back', async () => {
    const pool = new pg.Pool({ connectionString: url });
    const seen: Record<string, string[]> = {};
    const concurrent = (name: string) =>
      isolation.runTest(name, async () => {
        await pool.query('INSERT INTO notes (name) VALUES ($1)', [name]);
        // Let the sibling write before reading.
        await new Promise((resolve) => setTimeout(resolve, 200));
        const { rows } = await pool.query<{ name: string }>(
          "SELECT name FROM notes WHERE name LIKE 'concurrent-%' ORDER BY name",
        );
        seen[name] = rows.map((row) => row.name);
      });
    await Promise.all([concurrent('concurrent-a'), concurrent('concurrent-b'), concurrent('concurrent-c')]);
    expect(seen).toEqual({
      'concurrent-a': ['concurrent-a'],
      'concurrent-b': ['concurrent-b'],
      'concurrent-c': ['concurrent-c'],
    });
    expect(await committed('concurrent-a')).toBe(0);
    await pool.end();
  });

  it('take real row locks: a second test writing the same unique key waits until the first ends', async () => {
    const pool = new pg.Pool({ connectionString: url });
    const events: string[] = [];
    let wrote!: () => void;
    const firstWrote = new Promise<void>((resolve) => (wrote = resolve));
    const first = isolation.runTest('first writer', async () => {
      await pool.query("INSERT INTO notes (name) VALUES ('same-key')");
      wrote();
      await new Promise((resolve) => setTimeout(resolve, 400));
      events.push('first ends');
    });
    await firstWrote;
    const second = isolation.runTest('second writer', async () => {
      await pool.query("INSERT INTO notes (name) VALUES ('same-key')");
      events.push('second wrote');
    });
    await Promise.all([first, second]);
    expect(events).toEqual(['first ends', 'second wrote']);
    expect(await committed('same-key')).toBe(0);
    await pool.end();
  });

  it('fails a test beyond maxConnections, naming the option', async () => {
    const hold = () => isolation.runTest('holder', () => new Promise((resolve) => setTimeout(resolve, 300)));
    const results = await Promise.allSettled([
      hold(),
      hold(),
      hold(),
      isolation.runTest('fourth', async () => 1),
    ]);
    const refused = results.filter((result) => result.status === 'rejected');
    expect(refused).toHaveLength(1);
    const error = (refused[0] as PromiseRejectedResult).reason as IsolationError;
    expect(error).toBeInstanceOf(IsolationError);
    expect(error).toMatchObject({ reason: 'too-many-connections', test: 'fourth' });
    expect(error.message).toContain('isolation.maxConnections');
  });

  it('refuses a statement issued outside every running test’s context, naming them', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tests = [isolation.runTest('left', () => gate), isolation.runTest('right', () => gate)];
    const error = await client.query('SELECT 1').catch((e: unknown) => e);
    release();
    await Promise.all(tests);
    expect(error).toMatchObject({ reason: 'ambiguous-test' });
    expect((error as Error).message).toContain('"left", "right"');
    await client.end();
  });
});
