/**
 * Wire clients of the endpoint: each one's startup parameters and SET/RESET are its own (ParameterStatus
 * as the server reports it), DISCARD ALL resets only its own, BEGIN sent through the extended protocol waits
 * its turn, and COPY FROM STDIN through the extended protocol with a pipelined Sync completes.
 */
import net from 'node:net';
import pg from 'pg';
import { parse, serialize } from 'pg-protocol';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { enableIsolation, exemptFromIsolation, type Isolation } from '../../src/isolation/index.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const scratch = useScratch('wire_settings');
let url: string;
let isolation: Isolation;
const ends: Array<() => Promise<unknown>> = [];

function endpointUrl(): string {
  const target = new URL(url);
  target.hostname = isolation.endpoint!.host;
  target.port = String(isolation.endpoint!.port);
  return target.toString();
}

/** postgres.js over the endpoint, with startup parameters `connection`. */
function postgresJs(connection: Record<string, string> = {}): postgres.Sql {
  const sql = postgres(endpointUrl(), { max: 1, connection, onnotice: () => undefined });
  ends.push(() => sql.end({ timeout: 5 }));
  return sql;
}

/** node-postgres over the wire (exempt, so it really connects to the endpoint). */
async function wirePg(config: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = exemptFromIsolation(new pg.Client({ connectionString: endpointUrl(), ...config }));
  ends.push(() => client.end());
  await client.connect();
  return client;
}

const show = async (sql: postgres.Sql, name: string): Promise<string> =>
  Object.values((await sql.unsafe(`SHOW ${name}`))[0]!)[0] as string;

/** The text values of the DataRows among `messages`. */
const rows = (messages: Array<{ name: string }>): unknown[] =>
  messages
    .filter((message) => message.name === 'dataRow')
    .map((message) => (message as { fields?: unknown }).fields);

/**
 * A raw protocol client of the endpoint, started up: `send` writes messages in one packet, `until` waits for
 * a server message by name and returns (and forgets) what arrived up to it.
 */
async function rawClient() {
  const socket = net.connect(isolation.endpoint!.port, isolation.endpoint!.host);
  ends.push(async () => socket.destroy());
  const messages: Array<{ name: string }> = [];
  let wake = () => {};
  void parse(socket, (message) => {
    messages.push(message);
    wake();
  });
  const until = (name: string) =>
    new Promise<Array<{ name: string }>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${name} within 3 s: ${messages.map((m) => m.name)}`)),
        3000,
      );
      wake = () => {
        const index = messages.findIndex((message) => message.name === name);
        if (index === -1) return;
        clearTimeout(timer);
        resolve(messages.splice(0, index + 1));
      };
      wake();
    });
  const send = (...parts: Buffer[]) => socket.write(Buffer.concat(parts));
  await new Promise((resolve) => socket.once('connect', resolve));
  const { user, database } = new pg.Client({ connectionString: url });
  send(serialize.startup({ user: user!, database: database! }));
  await until('readyForQuery');
  return { send, until };
}

beforeAll(async () => {
  url = (await scratch.database()).url;
  await adminQuery('CREATE TABLE items (name text NOT NULL)', [], url);
  isolation = await enableIsolation({ connectionString: url, endpoint: true, detectLeaks: false });
});
beforeEach(() => isolation.begin());
afterEach(async () => {
  await Promise.all(ends.splice(0).map((end) => end()));
  await isolation.rollback();
});
afterAll(() => isolation?.close());

describe('each wire client’s settings are its own', () => {
  it('two clients with different application_name, search_path and TimeZone alternate, each seeing its own', async () => {
    const one = postgresJs({ application_name: 'one', search_path: 'one_schema', TimeZone: 'Asia/Tokyo' });
    const two = postgresJs({ application_name: 'two', TimeZone: 'UTC' });
    for (let round = 0; round < 3; round++) {
      expect(await show(one, 'application_name')).toBe('one');
      expect(await show(two, 'application_name')).toBe('two');
      expect(await show(one, 'search_path')).toBe('one_schema');
      expect(await show(two, 'search_path')).toBe('"$user", public');
      expect(await show(one, 'TimeZone')).toBe('Asia/Tokyo');
      expect(await show(two, 'TimeZone')).toBe('UTC');
    }
    await one`SET search_path TO elsewhere`;
    expect(await show(two, 'search_path')).toBe('"$user", public');
    expect(await show(one, 'search_path')).toBe('elsewhere');
  });

  it('reports its startup values and its own SETs as ParameterStatus, as the server does', async () => {
    const one = postgresJs({ application_name: 'one', TimeZone: 'asia/tokyo', DateStyle: 'sql, dmy' });
    const two = postgresJs({ application_name: 'two' });
    await one`SELECT 1`;
    await two`SELECT 1`;
    expect(one.parameters).toMatchObject({
      application_name: 'one',
      TimeZone: 'Asia/Tokyo',
      DateStyle: 'SQL, DMY',
    });
    expect(two.parameters.application_name).toBe('two');
    await one`SET TIME ZONE 'Europe/Paris'`;
    await two`SET application_name = 'renamed'`;
    expect(one.parameters.TimeZone).toBe('Europe/Paris');
    expect(one.parameters.application_name).toBe('one');
    expect(two.parameters.application_name).toBe('renamed');
    expect(two.parameters.TimeZone).not.toBe('Europe/Paris');
  });

  it('SET LOCAL ends with the client’s COMMIT', async () => {
    const one = postgresJs({ search_path: 'one_schema' });
    const two = postgresJs();
    await one.begin(async (tx) => {
      await tx`SET LOCAL search_path TO inside`;
      expect(await show(two, 'search_path')).toBe('"$user", public');
      expect(Object.values((await tx`SHOW search_path`)[0]!)[0]).toBe('inside');
    });
    expect(await show(one, 'search_path')).toBe('one_schema');
  });

  it('applies startup options -c and statement_timeout to that client only', async () => {
    const tuned = await wirePg({ options: '-c search_path=tuned_schema', statement_timeout: 150 });
    const plain = await wirePg();
    expect((await tuned.query('SHOW search_path')).rows[0].search_path).toBe('tuned_schema');
    expect((await plain.query('SHOW search_path')).rows[0].search_path).toBe('"$user", public');
    await expect(tuned.query('SELECT pg_sleep(1)')).rejects.toMatchObject({ code: '57014' });
    await plain.query('SELECT pg_sleep(0.3)');
    expect((await tuned.query('SHOW search_path')).rows[0].search_path).toBe('tuned_schema');
  });

  it('refuses a startup value the server rejects, with the server’s error', async () => {
    const client = exemptFromIsolation(
      new pg.Client({ connectionString: endpointUrl(), options: '-c statement_timeout=soon' }),
    );
    await expect(client.connect()).rejects.toMatchObject({ code: '22023' });
    await client.end().catch(() => undefined);
  });

  it('DISCARD ALL resets only that client’s settings, to its startup values', async () => {
    const one = postgresJs({ application_name: 'one' });
    const two = postgresJs({ application_name: 'two' });
    await one`SET search_path TO one_schema`;
    await one`SET application_name = 'one renamed'`;
    await two`SET search_path TO two_schema`;
    await one.unsafe('DISCARD ALL');
    expect(await show(one, 'search_path')).toBe('"$user", public');
    expect(await show(one, 'application_name')).toBe('one');
    expect(await show(two, 'search_path')).toBe('two_schema');
    expect(await show(two, 'application_name')).toBe('two');
  });
});

describe('the extended protocol', () => {
  it('BEGIN sent through the extended protocol waits until another client’s transaction ends', async () => {
    const a = await wirePg();
    const b = await wirePg();
    const extended = (client: pg.Client, text: string) =>
      client.query({ text, queryMode: 'extended' } as pg.QueryConfig);
    const events: string[] = [];
    await extended(a, 'BEGIN');
    await a.query("INSERT INTO items VALUES ('a')");
    const second = extended(b, 'BEGIN').then(() => events.push('b began'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    events.push('a commits');
    await extended(a, 'COMMIT');
    await second;
    await b.query("INSERT INTO items VALUES ('b')");
    await extended(b, 'ROLLBACK');
    expect(events).toEqual(['a commits', 'b began']);
    expect((await a.query('SELECT name FROM items ORDER BY name')).rows).toEqual([{ name: 'a' }]);
  });

  it('COPY FROM STDIN through Parse/Bind/Execute with the Sync pipelined completes', async () => {
    const raw = await rawClient();
    raw.send(
      serialize.parse({ text: 'COPY items (name) FROM STDIN' }),
      serialize.bind({}),
      serialize.execute({}),
      serialize.sync(),
    );
    await raw.until('copyInResponse');
    // The server ignored the Sync sent during COPY; as against the server, the next one is answered.
    raw.send(serialize.copyData(Buffer.from('copied\n')), serialize.copyDone(), serialize.sync());
    expect((await raw.until('readyForQuery')).map((message) => message.name)).toContain('commandComplete');
    raw.send(serialize.query("SELECT count(*) FROM items WHERE name = 'copied'"));
    expect(rows(await raw.until('readyForQuery'))).toEqual([['1']]);
  });

  // pgtwin's statement savepoint may travel as the unnamed statement and portal, ahead of the client's own.
  it('the unnamed statement a client parsed in one exchange is still its own in the next', async () => {
    const raw = await rawClient();
    raw.send(serialize.parse({ text: "SELECT 'kept'::text" }), serialize.sync());
    await raw.until('readyForQuery');
    raw.send(serialize.bind({}), serialize.execute({}), serialize.sync());
    expect(rows(await raw.until('readyForQuery'))).toEqual([['kept']]);
  });

  it('a client fetching the unnamed portal in parts across exchanges gets every row once', async () => {
    const raw = await rawClient();
    raw.send(serialize.query('BEGIN'));
    await raw.until('readyForQuery');
    raw.send(
      serialize.parse({ text: 'SELECT n FROM generate_series(1, 3) AS n' }),
      serialize.bind({}),
      serialize.execute({ rows: 2 }),
      serialize.sync(),
    );
    expect(rows(await raw.until('readyForQuery'))).toEqual([['1'], ['2']]);
    raw.send(serialize.execute({ rows: 2 }), serialize.sync());
    expect(rows(await raw.until('readyForQuery'))).toEqual([['3']]);
    raw.send(serialize.query('COMMIT'));
    await raw.until('readyForQuery');
  });

  it('two clients with statements and portals of the same names (JDBC’s S_1 and C_1) each run their own', async () => {
    const clients = [await rawClient(), await rawClient()];
    for (const [i, raw] of clients.entries()) {
      raw.send(serialize.parse({ name: 'S_1', text: `SELECT ${i} + $1::int` }), serialize.sync());
      expect((await raw.until('readyForQuery')).map((message) => message.name)).toContain('parseComplete');
    }
    for (const [i, raw] of clients.entries()) {
      raw.send(
        serialize.bind({ statement: 'S_1', portal: 'C_1', values: ['10'] }),
        serialize.execute({ portal: 'C_1' }),
        serialize.close({ type: 'P', name: 'C_1' }),
        serialize.sync(),
      );
      expect(rows(await raw.until('readyForQuery'))).toEqual([[`${i + 10}`]]);
    }
  });
});
