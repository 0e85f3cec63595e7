const { afterAll, beforeAll, expect, it } = require('@jest/globals');
const { fork } = require('node:child_process');
const path = require('node:path');
const pg = require('pg');
const postgres = require('postgres');

let sql;
let child;
let nextId = 0;
const replies = new Map();

/** Runs `text` through node-postgres in the child process, on a connection of its own. */
function inChild(text, params = []) {
  const id = (nextId += 1);
  return new Promise((resolve, reject) => {
    replies.set(id, (reply) =>
      reply.error ? reject(Object.assign(new Error(reply.error.message), reply.error)) : resolve(reply.rows),
    );
    child.send({ id, connection: 'app', sql: text, params });
  });
}

const countIn = async (slug) =>
  (await sql`SELECT count(*)::int AS n FROM public.clients WHERE slug = ${slug}`)[0].n;
const countInChild = async (slug) =>
  (await inChild('SELECT count(*)::int AS n FROM public.clients WHERE slug = $1', [slug]))[0].n;

beforeAll(async () => {
  // pgtwin's setup file ran its beforeAll first: TEST_DATABASE_URL names the worker's endpoint now.
  expect(new URL(process.env.TEST_DATABASE_URL).port).not.toBe(process.env.DB_PORT);
  sql = postgres(process.env.TEST_DATABASE_URL, { max: 2, onnotice: () => undefined });
  // Jest's process.env is the test file's own copy: a child process gets it only when given it.
  child = fork(path.join(__dirname, '../../../isolation/child-client.mjs'), { env: process.env });
  child.on('message', (reply) => {
    replies.get(reply.id)?.(reply);
    replies.delete(reply.id);
  });
});

afterAll(async () => {
  child?.disconnect();
  await sql?.end({ timeout: 5 });
});

it('shares one test transaction between postgres.js and a pg client in a child process', async () => {
  await sql`INSERT INTO public.clients (name, slug) VALUES ('Wire', 'wire-postgres-js')`;
  await inChild("INSERT INTO public.clients (name, slug) VALUES ('Child', 'wire-child')");
  expect(await countIn('wire-child')).toBe(1);
  expect(await countInChild('wire-postgres-js')).toBe(1);
});

it('finds the rows of both gone in the next test', async () => {
  expect(await countIn('wire-postgres-js')).toBe(0);
  expect(await countIn('wire-child')).toBe(0);
  expect(await countInChild('wire-child')).toBe(0);
});

it('shows postgres.js a row written through in-process pg in the same test', async () => {
  const app = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await app.connect();
  try {
    await app.query("INSERT INTO public.clients (name, slug) VALUES ('In process', 'wire-in-process')");
    expect(await countIn('wire-in-process')).toBe(1);
  } finally {
    await app.end();
  }
});

it('keeps the test usable after a postgres.js statement fails', async () => {
  await sql`INSERT INTO public.clients (name, slug) VALUES ('First', 'wire-twice')`;
  await expect(
    sql`INSERT INTO public.clients (name, slug) VALUES ('Again', 'wire-twice')`,
  ).rejects.toMatchObject({
    code: '23505',
  });
  await sql`INSERT INTO public.clients (name, slug) VALUES ('After', 'wire-after-error')`;
  expect(await countIn('wire-twice')).toBe(1);
  expect(await countInChild('wire-after-error')).toBe(1);
});
