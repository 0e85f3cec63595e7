/**
 * Each in-process pg client's session settings are its own: its startup parameters and its SET/RESET apply
 * to its statements only, though all clients of a test share one backend.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { enableIsolation, exemptFromIsolation, type Isolation } from '../../src/isolation/index.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const scratch = useScratch('settings');
let url: string;
const role = scratch.roleName('reader');
let isolation: Isolation;
const clients: pg.Client[] = [];
/** A pool made outside tests: its client lives across tests. */
let pool: pg.Pool;

async function connected(config: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, ...config });
  clients.push(client);
  await client.connect();
  return client;
}

const show = async (client: pg.Client | pg.Pool, name: string): Promise<string> =>
  Object.values((await client.query<Record<string, string>>(`SHOW ${name}`)).rows[0]!)[0]!;

beforeAll(async () => {
  url = (await scratch.database()).url;
  await adminQuery(`CREATE ROLE "${role}"`);
  isolation = await enableIsolation({ connectionString: url, detectLeaks: false });
  pool = new pg.Pool({ connectionString: url, max: 1 });
  // Outside tests: the worker connection's own setting, which every client that sets nothing keeps.
  await pool.query("SET work_mem = '7MB'");
});
beforeEach((context) => isolation.begin(context.task.name));
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.end()));
  await isolation.rollback();
});
afterAll(async () => {
  await pool.end();
  await isolation.close();
});

describe('SET and RESET', () => {
  it('a SET by one pg client is not seen by another, however their statements alternate', async () => {
    const one = await connected();
    const two = await connected();
    await one.query('SET search_path TO one_schema');
    expect(await show(two, 'search_path')).toBe('"$user", public');
    await two.query("SET TIME ZONE 'Asia/Tokyo'");
    for (let round = 0; round < 3; round++) {
      expect(await show(one, 'search_path')).toBe('one_schema');
      expect(await show(one, 'TimeZone')).not.toBe('Asia/Tokyo');
      expect(await show(two, 'search_path')).toBe('"$user", public');
      expect(await show(two, 'TimeZone')).toBe('Asia/Tokyo');
    }
  });

  it('a SET inside a transaction that rolls back is undone for that client, and a committed one kept', async () => {
    const one = await connected();
    const two = await connected();
    await one.query('BEGIN');
    await one.query("SET application_name = 'inside'");
    expect(await show(two, 'application_name')).toBe('');
    expect(await show(one, 'application_name')).toBe('inside');
    await one.query('ROLLBACK');
    expect(await show(one, 'application_name')).toBe('');
    await one.query('BEGIN');
    await one.query("SET application_name = 'kept'");
    await one.query('COMMIT');
    expect(await show(two, 'application_name')).toBe('');
    expect(await show(one, 'application_name')).toBe('kept');
  });

  it('SET LOCAL and set_config(..., true) end with the client’s COMMIT, as on a connection of its own', async () => {
    const direct = exemptFromIsolation(new pg.Client({ connectionString: url }));
    await direct.connect();
    const run = async (client: pg.Client, other?: pg.Client) => {
      await client.query('SET search_path TO before_tx');
      await client.query('BEGIN');
      await client.query('SET LOCAL search_path TO inside');
      await client.query("SELECT set_config('app.tenant', 'tenant-1', true)");
      if (other) expect(await show(other, 'search_path')).toBe('"$user", public');
      const inside = [await show(client, 'search_path'), await show(client, 'app.tenant')];
      await client.query('COMMIT');
      const after = (
        await client.query(
          "SELECT current_setting('search_path') AS s, current_setting('app.tenant', true) AS t",
        )
      ).rows[0];
      return { inside, after };
    };
    try {
      const expected = await run(direct);
      expect(expected.after).toEqual({ s: 'before_tx', t: '' });
      expect(await run(await connected(), await connected())).toEqual(expected);
    } finally {
      await direct.end();
    }
  });

  it('a failing statement keeps the settings its client had, and the other client’s', async () => {
    const one = await connected();
    const two = await connected();
    await one.query('SET search_path TO one_schema');
    await two.query('SET search_path TO two_schema');
    await expect(one.query('SELECT * FROM missing_table')).rejects.toMatchObject({ code: '42P01' });
    await expect(two.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    expect(await show(one, 'search_path')).toBe('one_schema');
    expect(await show(two, 'search_path')).toBe('two_schema');
  });

  it('sees the setting made outside tests unless it sets its own', async () => {
    const one = await connected();
    const two = await connected();
    expect(await show(one, 'work_mem')).toBe('7MB');
    await one.query("SET work_mem = '9MB'");
    expect(await show(two, 'work_mem')).toBe('7MB');
    expect(await show(one, 'work_mem')).toBe('9MB');
  });

  it('SET ROLE and SET SESSION AUTHORIZATION apply to that client only, and their RESET ends them', async () => {
    const one = await connected();
    const two = await connected();
    const user = async (client: pg.Client) => (await client.query('SELECT current_user AS u')).rows[0].u;
    const own = await user(one);
    await one.query(`SET ROLE "${role}"`);
    expect(await user(two)).toBe(own);
    expect(await user(one)).toBe(role);
    await one.query('RESET ROLE');
    expect(await user(one)).toBe(own);
    await one.query(`SET SESSION AUTHORIZATION "${role}"`);
    expect(await user(two)).toBe(own);
    expect(await user(one)).toBe(role);
    await one.query('RESET SESSION AUTHORIZATION');
    expect(await user(one)).toBe(own);
  });

  it('a SET made in one test is gone in the next, for a client that lives across tests (1/2)', async () => {
    await pool.query("SET application_name = 'set in a test'");
    expect(await show(pool, 'application_name')).toBe('set in a test');
  });

  it('a SET made in one test is gone in the next, for a client that lives across tests (2/2)', async () => {
    expect(await show(pool, 'application_name')).toBe('');
  });
});

describe('concurrent tests', () => {
  it('a client that moves to another test meanwhile leaves none of its settings to the next client', async () => {
    let signalSet!: () => void;
    const set = new Promise<void>((resolve) => (signalSet = resolve));
    let signalMoved!: () => void;
    const moved = new Promise<void>((resolve) => (signalMoved = resolve));
    await Promise.all([
      isolation.runTest('first', async () => {
        const other = new pg.Client({ connectionString: url });
        await other.connect();
        await other.query('SELECT 1');
        // The pool's one client sets a parameter here, then serves the second test, then this one's other client runs.
        await pool.query('SET search_path TO moved_schema');
        signalSet();
        await moved;
        expect(await show(other, 'search_path')).toBe('"$user", public');
        await other.end();
      }),
      isolation.runTest('second', async () => {
        await set;
        expect(await show(pool, 'search_path')).toBe('"$user", public');
        signalMoved();
      }),
    ]);
  });
});

describe('startup parameters', () => {
  it('applies application_name, options -c and statement_timeout to that client only', async () => {
    const tuned = await connected({
      application_name: 'tuned',
      options: '-c search_path=tuned_schema -c TimeZone=Asia/Tokyo --DateStyle=SQL,DMY',
      statement_timeout: 150,
    });
    const plain = await connected();
    for (let round = 0; round < 2; round++) {
      expect(await show(tuned, 'application_name')).toBe('tuned');
      expect(await show(tuned, 'search_path')).toBe('tuned_schema');
      expect(await show(tuned, 'TimeZone')).toBe('Asia/Tokyo');
      expect(await show(tuned, 'DateStyle')).toBe('SQL, DMY');
      expect(await show(plain, 'application_name')).toBe('');
      expect(await show(plain, 'search_path')).toBe('"$user", public');
      expect(await show(plain, 'DateStyle')).toBe('ISO, MDY');
    }
    await expect(tuned.query('SELECT pg_sleep(1)')).rejects.toMatchObject({ code: '57014' });
    await plain.query('SELECT pg_sleep(0.3)');
    expect(await show(tuned, 'statement_timeout')).toBe('150ms');
  });

  it('RESET and RESET ALL return to the client’s startup values, DISCARD ALL too, and only its own', async () => {
    const tuned = await connected({ application_name: 'tuned', options: '-c search_path=tuned_schema' });
    const other = await connected({ application_name: 'other' });
    await other.query("SET lock_timeout = '3s'");
    await tuned.query("SET application_name = 'changed'");
    await tuned.query("SET lock_timeout = '5s'");
    await tuned.query('RESET application_name');
    expect(await show(tuned, 'application_name')).toBe('tuned');
    await tuned.query('SET search_path TO elsewhere');
    await tuned.query('RESET ALL');
    expect(await show(tuned, 'search_path')).toBe('tuned_schema');
    expect(await show(tuned, 'lock_timeout')).toBe('0');
    await tuned.query("SET application_name = 'changed again'");
    await tuned.query('DISCARD ALL');
    expect(await show(tuned, 'application_name')).toBe('tuned');
    expect(await show(other, 'application_name')).toBe('other');
    expect(await show(other, 'lock_timeout')).toBe('3s');
  });

  it('refuses to connect with a value the server rejects, with the server’s error', async () => {
    const client = new pg.Client({ connectionString: url, options: '-c statement_timeout=soon' });
    await expect(client.connect()).rejects.toMatchObject({ code: '22023' });
  });
});
