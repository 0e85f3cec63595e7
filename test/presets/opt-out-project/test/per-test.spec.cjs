const { afterEach, expect, it } = require('@jest/globals');
const { pgtwin } = require('pgtwin/jest');
const { connect, endClients } = require('./clients.cjs');

afterEach(endClients);

const workerDatabase = process.env.TEST_DB_NAME;

it('gives one test a real database under Jest: NOTIFY between connections, commits', async () => {
  await pgtwin.isolation(false);
  expect(process.env.TEST_DB_NAME).toMatch(/_copy_/);
  const [a, b] = [await connect(), await connect()];
  await a.query('LISTEN pgtwin_jobs');
  const delivered = new Promise((resolve) => a.once('notification', (message) => resolve(message.payload)));
  await b.query(`SELECT pg_notify('pgtwin_jobs', 'job 1')`);
  expect(await delivered).toBe('job 1');
  await a.query(`INSERT INTO public.clients (name, slug) VALUES ('Real Co', 'real-co')`);
  expect((await b.query(`SELECT 1 FROM public.clients WHERE slug = 'real-co'`)).rowCount).toBe(1);
});

it('runs the next Jest test isolated again, without the rows the opted-out test committed', async () => {
  expect(process.env.TEST_DB_NAME).toBe(workerDatabase);
  const client = await connect();
  const { rows } = await client.query('SELECT slug FROM public.clients ORDER BY slug');
  expect(rows.map((row) => row.slug)).toEqual(['acme']);
});
