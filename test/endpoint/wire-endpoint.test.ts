/**
 * The wire endpoint at the protocol level: startup and authentication, the transaction status each client
 * sees, cancel and terminate, COPY and pipelining. The conformance suite (test/isolation) runs the
 * application scenarios through it.
 */
import net from 'node:net';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { enableIsolation, exemptFromIsolation, type Isolation } from '../../src/isolation/index.js';
import { adminQuery, useScratch } from '../helpers/databases.js';
import { observe } from '../isolation/observer.js';

const PASSWORD = 'endpoint-secret';
const scratch = useScratch('endpoint');
let url: string;
let isolation: Isolation;
let sql: postgres.Sql;

/** The endpoint's URL, with `password` (the configured one unless given). */
function endpointUrl(password = PASSWORD, database?: string): string {
  const target = new URL(url);
  target.hostname = isolation.endpoint!.host;
  target.port = String(isolation.endpoint!.port);
  target.password = password;
  if (database) target.pathname = `/${database}`;
  return target.toString();
}

/** Sends the protocol's CancelRequest for `client`'s running statement, as a separate connection does. */
async function cancelOver(client: pg.Client): Promise<void> {
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  const socket = net.connect(isolation.endpoint!.port, isolation.endpoint!.host);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const request = Buffer.alloc(16);
  request.writeInt32BE(16, 0);
  request.writeInt32BE(80877102, 4);
  request.writeInt32BE(processID, 8);
  request.writeInt32BE(secretKey, 12);
  socket.end(request);
  await new Promise((resolve) => socket.once('close', resolve));
}

/** node-postgres over the wire: an exempt client is not taken over in-process, so it really connects. */
async function wireClient(): Promise<pg.Client> {
  const client = exemptFromIsolation(new pg.Client({ connectionString: endpointUrl() }));
  await client.connect();
  return client;
}

const count = async (db: { query: pg.Client['query'] } | postgres.Sql, name: string) => {
  if (typeof db === 'function')
    return (await db`SELECT count(*)::int AS n FROM items WHERE name = ${name}`)[0]!.n;
  return (await (db as pg.Client).query('SELECT count(*)::int AS n FROM items WHERE name = $1', [name]))
    .rows[0].n;
};
const committed = async (name: string) =>
  (await observe<{ n: number }>(url, 'SELECT count(*)::int AS n FROM items WHERE name = $1', [name]))[0]!.n;

beforeAll(async () => {
  url = (await scratch.database()).url;
  await adminQuery('CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE)', [], url);
  // The suite's server trusts every connection; the endpoint asks for the configured password all the same.
  const withPassword = new URL(url);
  withPassword.password = PASSWORD;
  isolation = await enableIsolation({
    connectionString: withPassword.toString(),
    endpoint: true,
    detectLeaks: false,
  });
  sql = postgres(endpointUrl(), { max: 3, onnotice: () => undefined });
});
beforeEach(() => isolation.begin());
afterEach(() => isolation.rollback());
afterAll(async () => {
  await sql?.end({ timeout: 5 });
  await isolation?.close();
});

describe('startup', () => {
  it('asks for SCRAM-SHA-256 only, as the server does with scram-sha-256 passwords', async () => {
    const socket = net.connect(isolation.endpoint!.port, isolation.endpoint!.host);
    try {
      await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const { user, database } = new pg.Client({ connectionString: url });
      const body = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
      const startup = Buffer.alloc(8);
      startup.writeInt32BE(8 + body.length, 0);
      startup.writeInt32BE(196608, 4);
      socket.write(Buffer.concat([startup, body]));
      const answer: Buffer = await new Promise((resolve) => socket.once('data', resolve));
      expect(answer.toString('latin1', 0, 1)).toBe('R');
      // AuthenticationSASL (10), then the mechanisms: SCRAM-SHA-256 alone, no -PLUS (channel binding).
      expect(answer.readInt32BE(5)).toBe(10);
      expect(answer.subarray(9).toString('latin1')).toBe('SCRAM-SHA-256\0\0');
    } finally {
      socket.destroy();
    }
  });

  it('authenticates pg and postgres.js with SCRAM-SHA-256 (pg checks the server’s signature too)', async () => {
    const client = await wireClient();
    try {
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      await client.end();
    }
    const one = postgres(endpointUrl(), { max: 1 });
    try {
      expect((await one`SELECT 1 AS one`)[0]!.one).toBe(1);
    } finally {
      await one.end();
    }
  });

  it('refuses a wrong password with SQLSTATE 28P01 and the server’s message, through pg and postgres.js', async () => {
    const failure = {
      code: '28P01',
      message: `password authentication failed for user "${new pg.Client({ connectionString: url }).user}"`,
    };
    const wrong = postgres(endpointUrl('not-the-password'), { max: 1 });
    await expect(wrong`SELECT 1`).rejects.toMatchObject(failure);
    await wrong.end();
    const client = exemptFromIsolation(new pg.Client({ connectionString: endpointUrl('not-the-password') }));
    await expect(client.connect()).rejects.toMatchObject(failure);
    await client.end().catch(() => undefined);
  });

  it('serves only the test database, saying which one it serves', async () => {
    const other = postgres(endpointUrl(PASSWORD, 'postgres'), { max: 1 });
    await expect(other`SELECT 1`).rejects.toMatchObject({
      code: '3D000',
      message: expect.stringContaining('serves only'),
    });
    await other.end();
  });

  it('sends the server’s parameter status values', async () => {
    const client = await wireClient();
    try {
      await sql`SELECT 1`;
      const real = (await client.query('SHOW server_version')).rows[0].server_version;
      expect((sql as unknown as { parameters: Record<string, string> }).parameters.server_version).toBe(real);
    } finally {
      await client.end();
    }
  });
});

describe('one test transaction for pg and wire clients', () => {
  it('a row written through pg is visible to postgres.js in the same test, and the other way round', async () => {
    const app = new pg.Client({ connectionString: url });
    await app.connect();
    try {
      await app.query("INSERT INTO items (name) VALUES ('from-pg')");
      await sql`INSERT INTO items (name) VALUES ('from-wire')`;
      expect(await count(sql, 'from-pg')).toBe(1);
      expect(await count(app, 'from-wire')).toBe(1);
    } finally {
      await app.end();
    }
  });

  it('both rows are gone in the next test and were never committed', async () => {
    expect(await count(sql, 'from-pg')).toBe(0);
    expect(await count(sql, 'from-wire')).toBe(0);
    expect(await committed('from-pg')).toBe(0);
    expect(await committed('from-wire')).toBe(0);
  });
});

describe('prepared statements, each client its own as on a server', () => {
  let first: pg.Client;
  let second: pg.Client;
  const named = (name: string, text: string, values: unknown[] = []) => ({ name, text, values });

  it('two clients prepare statements of the same name (as every connection of a pool does) without colliding', async () => {
    [first, second] = await Promise.all([wireClient(), wireClient()]);
    await first.query("INSERT INTO items (name) VALUES ('prepared-row')");
    expect((await first.query(named('lookup', 'SELECT 1 AS n'))).rows).toEqual([{ n: 1 }]);
    expect((await second.query(named('lookup', 'SELECT 2 AS n'))).rows).toEqual([{ n: 2 }]);
    const portal = named('rows', 'SELECT name FROM items WHERE name = $1', ['prepared-row']);
    expect((await first.query(portal)).rows).toEqual([{ name: 'prepared-row' }]);
  });

  it('and keep them in the next test, after pgtwin made the server forget them between tests, and after another client’s DEALLOCATE ALL', async () => {
    try {
      // node-pg sends only Bind and Execute for a name it has prepared on its connection.
      expect((await first.query(named('lookup', 'SELECT 1 AS n'))).rows).toEqual([{ n: 1 }]);
      expect((await second.query(named('lookup', 'SELECT 2 AS n'))).rows).toEqual([{ n: 2 }]);
      expect(
        (await first.query(named('rows', 'SELECT name FROM items WHERE name = $1', ['x']))).rows,
      ).toEqual([]);
      // DEALLOCATE ALL from one client reaches every client of the shared connection: each prepares again.
      const app = new pg.Client({ connectionString: url });
      await app.connect();
      try {
        expect((await app.query(named('own', 'SELECT 3 AS n'))).rows).toEqual([{ n: 3 }]);
        await app.query('DEALLOCATE ALL');
        expect((await first.query(named('lookup', 'SELECT 1 AS n'))).rows).toEqual([{ n: 1 }]);
        await second.query('DEALLOCATE ALL');
        expect((await app.query(named('own', 'SELECT 3 AS n'))).rows).toEqual([{ n: 3 }]);
        expect((await first.query(named('lookup', 'SELECT 1 AS n'))).rows).toEqual([{ n: 1 }]);
      } finally {
        await app.end();
      }
    } finally {
      await Promise.all([first.end(), second.end()]);
    }
  });
});

describe('the protocol', () => {
  it('answers ReadyForQuery with the status this client would see: I, T, then E after an error', async () => {
    const client = await wireClient();
    const other = await wireClient();
    try {
      await client.query('SELECT 1');
      expect(client.getTransactionStatus()).toBe('I');
      await client.query('BEGIN');
      expect(client.getTransactionStatus()).toBe('T');
      await other.query('SELECT 1');
      expect(other.getTransactionStatus()).toBe('I');
      await expect(client.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
      expect(client.getTransactionStatus()).toBe('E');
      await client.query('ROLLBACK');
      expect(client.getTransactionStatus()).toBe('I');
    } finally {
      await Promise.all([client.end(), other.end()]);
    }
  });

  it('answers queries pipelined on one connection (postgres.js) in order', async () => {
    const one = postgres(endpointUrl(), { max: 1, onnotice: () => undefined });
    try {
      const names = Array.from({ length: 30 }, (_, i) => `pipelined-${i}`);
      const inserted = await Promise.all(
        names.map((name) => one`INSERT INTO items (name) VALUES (${name}) RETURNING id, name`),
      );
      expect(inserted.map((rows) => rows[0]!.name)).toEqual(names);
      const ids = inserted.map((rows) => rows[0]!.id as number);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
    } finally {
      await one.end({ timeout: 5 });
    }
  });

  it('copies in and out', async () => {
    const writable = await sql`COPY items (name) FROM STDIN`.writable();
    writable.end('copied-1\ncopied-2\n');
    await new Promise((resolve, reject) => writable.on('finish', resolve).on('error', reject));
    const readable = await sql`COPY (SELECT name FROM items ORDER BY name) TO STDOUT`.readable();
    let out = '';
    for await (const chunk of readable) out += String(chunk);
    expect(out).toBe('copied-1\ncopied-2\n');
  });

  it('passes binary results through', async () => {
    const client = await wireClient();
    try {
      // node-postgres reads int4 in the binary format as 4 bytes: text passed off as binary would not parse.
      const { rows } = await client.query({ text: 'SELECT 42::int4 AS n', binary: true } as pg.QueryConfig);
      expect(rows[0].n).toBe(42);
    } finally {
      await client.end();
    }
  });

  it('cancels only the statement of the client that asked', async () => {
    const sleeping = sql`SELECT pg_sleep(30)`;
    const done = sleeping.then(
      () => 'finished',
      (error: { code?: string }) => error.code,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    await sleeping.cancel();
    expect(await done).toBe('57014');
    await sql`INSERT INTO items (name) VALUES ('after-cancel')`;
    expect(await count(sql, 'after-cancel')).toBe(1);
  });

  it('a cancel that arrives while the statement waits for the shared connection cancels it once it runs, and nothing else', async () => {
    const holder = await wireClient();
    const waiter = await wireClient();
    try {
      // The holder's statement has the session's one connection; the waiter's queues behind it.
      const held = holder.query('SELECT pg_sleep(0.5) AS slept');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const waiting = waiter.query('SELECT pg_sleep(30)').then(
        () => 'finished',
        (error: { code?: string }) => error.code,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      await cancelOver(waiter);
      expect((await held).rows).toEqual([{ slept: '' }]);
      expect(await waiting).toBe('57014');
      await waiter.query("INSERT INTO items (name) VALUES ('after-queued-cancel')");
      expect(await count(holder, 'after-queued-cancel')).toBe(1);
    } finally {
      await Promise.all([holder.end(), waiter.end()]);
    }
  });

  it('a cancel sent at any moment of a statement cancels that statement or nothing: never pgtwin’s own SQL or what comes next', async () => {
    const other = await wireClient();
    try {
      for (let round = 0; round < 40; round++) {
        const sleeping = sql`SELECT pg_sleep(30)`;
        const done = sleeping.then(
          () => 'finished',
          (error: { code?: string }) => error.code,
        );
        await new Promise((resolve) => setTimeout(resolve, round % 8));
        // Another client's statement between: a late cancel must not reach it.
        const between = other.query('SELECT $1::int AS round', [round]);
        await sleeping.cancel();
        expect(await done, `round ${round}`).toBe('57014');
        expect((await between).rows).toEqual([{ round }]);
        await sql`INSERT INTO items (name) VALUES (${`cancel-round-${round}`})`;
      }
      expect(await count(other, 'cancel-round-39')).toBe(1);
      const { rows } = await other.query(
        "SELECT count(*)::int AS n FROM items WHERE name LIKE 'cancel-round-%'",
      );
      expect(rows[0].n).toBe(40);
    } finally {
      await other.end();
    }
  });

  it('Terminate closes only that client and rolls back its open transaction', async () => {
    const client = await wireClient();
    await client.query('BEGIN');
    await client.query("INSERT INTO items (name) VALUES ('left-open')");
    await client.end();
    expect(await count(sql, 'left-open')).toBe(0);
    await sql`INSERT INTO items (name) VALUES ('still-working')`;
    expect(await count(sql, 'still-working')).toBe(1);
  });
});

describe('concurrent tests', () => {
  it('answers an ErrorResponse naming the limit while several tests run at once, and joins the one test again after', async () => {
    const client = await wireClient();
    try {
      let finish!: () => void;
      const concurrent = isolation.runTest(
        'a concurrent test',
        () => new Promise<void>((resolve) => (finish = resolve)),
      );
      await expect(client.query('SELECT 1')).rejects.toMatchObject({
        code: '55000',
        message: expect.stringContaining('serves one test at a time'),
      });
      finish();
      await concurrent;
      await client.query("INSERT INTO items (name) VALUES ('after-concurrent')");
      expect(await count(client, 'after-concurrent')).toBe(1);
      expect(await committed('after-concurrent')).toBe(0);
    } finally {
      await client.end();
    }
  });
});
