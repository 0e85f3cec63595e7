import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { pgtwin } from 'pgtwin/vitest';
import { afterEach, expect, inject, it } from 'vitest';
import { connect, endClients } from './clients.cjs';

afterEach(endClients);

/** When pgtwin created the database `client` is on, from its marker (readable from any database). */
async function createdAt(client: pg.Client): Promise<Date> {
  const { rows } = await client.query<{ comment: string }>(
    `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = current_database()`,
  );
  return new Date((JSON.parse(rows[0]!.comment.slice('pgtwin:'.length)) as { created: string }).created);
}

const workerDatabase = process.env.TEST_DB_NAME!;

it('gives one test a real database: its own backends, NOTIFY, blocking row locks and now() advancing', async () => {
  await pgtwin.isolation(false);
  expect(process.env.TEST_DB_NAME).toMatch(/_copy_/);
  expect(inject('pgtwin').database).toBe(process.env.TEST_DB_NAME);
  const [a, b] = [await connect(), await connect()];
  const pid = async (client: pg.Client) =>
    (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  expect(await pid(a)).not.toBe(await pid(b));

  await a.query('LISTEN pgtwin_jobs');
  const delivered = new Promise<string | undefined>((resolve) =>
    a.once('notification', (message) => resolve(message.payload)),
  );
  await b.query(`SELECT pg_notify('pgtwin_jobs', 'job 1')`);
  expect(await delivered).toBe('job 1');

  await a.query(`INSERT INTO public.clients (name, slug) VALUES ('Real Co', 'real-co')`);
  await a.query('BEGIN');
  await a.query(`SELECT * FROM public.clients WHERE slug = 'real-co' FOR UPDATE`);
  await b.query(`SET lock_timeout = '200ms'`);
  await expect(b.query(`SELECT * FROM public.clients WHERE slug = 'real-co' FOR UPDATE`)).rejects.toThrow(
    /lock timeout/,
  );
  await a.query('COMMIT');
  // Committed by a, so b sees it.
  expect((await b.query(`SELECT 1 FROM public.clients WHERE slug = 'real-co'`)).rowCount).toBe(1);

  const now = async () => (await a.query<{ now: Date }>('SELECT now()')).rows[0]!.now.getTime();
  const first = await now();
  await sleep(20);
  expect(await now()).toBeGreaterThan(first);
});

it('runs the next test isolated again, on the worker database, without the rows the opted-out test committed', async () => {
  expect(process.env.TEST_DB_NAME).toBe(workerDatabase);
  expect(inject('pgtwin').database).toBe(workerDatabase);
  const client = await connect();
  const { rows } = await client.query<{ slug: string }>('SELECT slug FROM public.clients ORDER BY slug');
  expect(rows.map((row) => row.slug)).toEqual(['acme']);
  await client.query(`INSERT INTO public.clients (name, slug) VALUES ('Rolled Back', 'rolled-back')`);

  // Meanwhile the worker's pool made a copy ready for the next test that opts out.
  const prefix = `${workerDatabase.slice(0, 30)}_ready_`;
  for (let waited = 0; ; waited += 100) {
    const ready = await client.query('SELECT 1 FROM pg_database WHERE starts_with(datname, $1)', [prefix]);
    if (ready.rowCount) break;
    if (waited > 100_000) throw new Error(`no ${prefix}* database appeared`);
    await sleep(100);
  }
});

it('takes a copy made before the test started, and commits there only from the call on', async () => {
  const before = await connect();
  const started = new Date();
  await pgtwin.isolation(false);
  const copy = await connect();
  expect(await createdAt(copy)).toBeDefined();
  expect((await createdAt(copy)).getTime()).toBeLessThan(started.getTime());
  // A fresh copy: neither the first test's committed row nor the second test's rolled-back one.
  const { rows } = await copy.query<{ slug: string }>('SELECT slug FROM public.clients ORDER BY slug');
  expect(rows.map((row) => row.slug)).toEqual(['acme']);
  // A client connected before the call stays in this test's transaction, on the worker database.
  expect((await before.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db).toBe(
    workerDatabase,
  );
});
