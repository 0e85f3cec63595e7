import pg from 'pg';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import {
  enableIsolation,
  exemptFromIsolation,
  withTestTransaction,
  type Isolation,
} from '../../src/isolation/index.js';
import { createIsolatedTest } from './isolated-test.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const scratch = useScratch('explicit');
const { url } = await scratch.database();
await adminQuery('CREATE TABLE events (id int PRIMARY KEY)', [], url);
const committedEvents = async () => {
  const client = exemptFromIsolation(new pg.Client({ connectionString: url }));
  await client.connect();
  try {
    return (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]!.n;
  } finally {
    await client.end();
  }
};

const it = createIsolatedTest({ connectionString: url, detectLeaks: false });

describe('the db fixture', () => {
  it('hands each test a connection bound to its transaction', async ({ db }) => {
    await db.query('INSERT INTO events VALUES (1)');
    expect((await db.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(1);
  });
  it('whose writes are rolled back after the test', async ({ db }) => {
    expect((await db.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(0);
    expect(await committedEvents()).toBe(0);
  });
});

describe('withTestTransaction', () => {
  let isolation: Isolation;
  beforeAll(async () => {
    isolation = await enableIsolation({ connectionString: url, implicit: false, detectLeaks: false });
  });
  afterAll(() => isolation.close());

  it('runs a function in a transaction rolled back afterwards, even when it throws', async () => {
    await expect(
      withTestTransaction(isolation, async (db) => {
        await db.query('INSERT INTO events VALUES (2)');
        expect((await db.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(1);
        throw new Error('the function fails');
      }),
    ).rejects.toThrow('the function fails');
    expect(await committedEvents()).toBe(0);
  });
});
