import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IsolationError } from '../../src/errors.js';
import { enableIsolation, type Isolation } from '../../src/isolation/index.js';
import { useScratch } from '../helpers/databases.js';

// Each case here is one that node-postgres's own integration tests exercise and that pgtwin's virtual
// clients once got wrong (issue 17): see test/isolation/node-postgres-suite/.

const scratch = useScratch('npgapi');
let url: string;
let isolation: Isolation;

beforeAll(async () => {
  url = (await scratch.database()).url;
  isolation = await enableIsolation({ connectionString: url, detectLeaks: false });
});
afterAll(() => isolation.close());

/** Runs `fn` as one pgtwin test with a connected virtual client, ended afterwards. */
function inTest<T>(fn: (client: pg.Client) => Promise<T>, config: pg.ClientConfig = {}): Promise<T> {
  return isolation.runTest(expect.getState().currentTestName, async () => {
    const client = new pg.Client({ connectionString: url, ...config });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  });
}

/** A submittable of the application's own, as pg-cursor and pg-query-stream are. */
class CustomQuery {
  constructor(readonly handleError: (error: Error) => void) {}
  text = 'SELECT 1';
  submit(): void {}
  handleReadyForQuery(): void {}
}

async function elapsed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

describe('node-postgres client API on a virtual client', () => {
  it('emits drain once its last query has been answered', () =>
    inTest(async (client) => {
      const drained = vi.fn();
      client.on('drain', drained);
      const first = client.query('SELECT 1');
      const second = client.query('SELECT 2');
      await first;
      expect(drained).not.toHaveBeenCalled();
      await second;
      expect(drained).toHaveBeenCalledTimes(1);
    }));

  it('passes the server’s NOTICE messages to the client’s notice event', () =>
    inTest(async (client) => {
      const notices: Array<{ message: string; severity: string }> = [];
      client.on('notice', (notice) => notices.push(notice as never));
      await client.query(`DO $$ BEGIN RAISE NOTICE 'hello, world!'; END $$`);
      expect(notices).toMatchObject([{ message: 'hello, world!', severity: 'NOTICE' }]);
    }));

  it('fails a running query with “Connection terminated” on end(), and cancels it on the server', () =>
    isolation.runTest('end during a query', async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const sleeping = client.query('SELECT pg_sleep(30)').catch((error: Error) => error);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await client.end();
      expect(await sleeping).toMatchObject({ message: 'Connection terminated' });
      const other = new pg.Client({ connectionString: url });
      await other.connect();
      expect(await elapsed(() => other.query('SELECT 1'))).toBeLessThan(2_000);
      await other.end();
    }));

  it('cancels a statement whose query_timeout fired, so the next statement does not wait for it', () =>
    inTest(
      async (client) => {
        const other = new pg.Client({ connectionString: url });
        await other.connect();
        const took = await elapsed(async () => {
          const error = await client.query('SELECT pg_sleep(30)').catch((e: Error) => e);
          expect(error).toMatchObject({ message: 'Query read timeout' });
          await other.query('SELECT 1');
        });
        expect(took).toBeLessThan(2_000);
        await other.end();
      },
      { query_timeout: 200 },
    ));

  it('returns promises of the Promise class the client was given', async () => {
    class TaggedPromise<T> extends Promise<T> {}
    const client = new pg.Client({ connectionString: url, Promise: TaggedPromise } as pg.ClientConfig);
    await isolation.runTest('Promise option', async () => {
      const connecting = client.connect();
      expect(connecting).toBeInstanceOf(TaggedPromise);
      await connecting;
      const query = client.query('SELECT 1');
      expect(query).toBeInstanceOf(TaggedPromise);
      await query;
      const ending = client.end();
      expect(ending).toBeInstanceOf(TaggedPromise);
      await ending;
    });
  });

  it('in pipeline mode, refuses a cursor and `rows` as node-pg does, and end() lets queries finish', () =>
    inTest(
      async (client) => {
        const refused = new Promise<Error>((resolve) => client.query(new CustomQuery(resolve)));
        expect(await refused).toMatchObject({
          message:
            'Custom query classes such as pg-cursor and pg-query-stream are not supported in pipeline mode',
        });
        const rows = await client
          .query({ text: 'SELECT 1', rows: 1 } as pg.QueryConfig)
          .catch((error: Error) => error);
        expect(rows).toMatchObject({ message: 'The `rows` option is not supported in pipeline mode' });
        const pending = [client.query('SELECT 1 AS n'), client.query('SELECT 2 AS n')];
        const ending = client.end();
        expect((await Promise.all(pending)).map((result) => result.rows[0].n)).toEqual([1, 2]);
        await ending;
      },
      { pipeline: true } as pg.ClientConfig,
    ));

  it('in pipeline mode, a query_timeout fails the queries behind it and the client, as node-pg does', () =>
    inTest(
      async (client) => {
        const errors: Error[] = [];
        client.on('error', (error) => errors.push(error));
        const results = await Promise.allSettled([
          client.query('SELECT 1 AS n'),
          client.query({ text: 'SELECT pg_sleep(30)', query_timeout: 200 } as pg.QueryConfig),
          client.query('SELECT 3 AS n'),
        ]);
        expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
        expect(results[1]).toMatchObject({ reason: { message: 'Query read timeout' } });
        expect(errors).toMatchObject([{ message: 'Connection terminated unexpectedly' }]);
      },
      { pipeline: true } as pg.ClientConfig,
    ));

  it('lets a pg.Query error handler that throws go uncaught, and the next statement still runs', async () => {
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const uncaught = new Promise<Error>((resolve) => process.once('uncaughtException', resolve));
    try {
      await inTest(async (client) => {
        client.query(
          new pg.Query('SELECT * FROM no_such_table', [], () => {
            throw new Error('thrown by the handler');
          }),
        );
        expect(await uncaught).toMatchObject({ message: 'thrown by the handler' });
        expect((await client.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      });
    } finally {
      for (const listener of listeners) process.on('uncaughtException', listener);
    }
  });

  it('ends a test from inside a query callback without cancelling anything or opening a connection', async () => {
    const sockets = vi.spyOn(pg.Connection.prototype as unknown as { connect(): void }, 'connect');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    sockets.mockClear();
    await isolation.runTest('ends in a callback', async () => {
      await new Promise((resolve) => client.query(new pg.Query('SELECT 1', [], resolve)));
    });
    expect(sockets).not.toHaveBeenCalled();
    sockets.mockRestore();
    await isolation.runTest('next', async () => {
      expect((await client.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
    });
    await client.end();
  });

  it('runs a pg.Query’s handlers in the test that issued it, not in the test that opened the connection', async () => {
    await isolation.runTest('first', () => inTest(async (client) => client.query('SELECT 1')));
    await inTest(async (client) => {
      const query = client.query(new pg.Query('SELECT 1'));
      const next = await new Promise<pg.QueryResult>((resolve, reject) =>
        query.on('end', () => client.query('SELECT 2 AS n').then(resolve, reject)),
      );
      expect(next.rows).toEqual([{ n: 2 }]);
    });
  });

  it('fails the statements after a lost connection saying so, and the next test runs', async () => {
    await inTest(async (client) => {
      await client.query('SELECT pg_terminate_backend(pg_backend_pid())').catch(() => undefined);
      const error = await client.query('SELECT 1').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IsolationError);
      expect(error).toMatchObject({ reason: 'connection-lost' });
      expect((error as Error).message).toMatch(/was lost during the test.*opt out of isolation/s);
    });
    await inTest(async (client) => {
      expect((await client.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    });
  });

  it('refuses a query whose text is not a string with node-pg’s own message', () =>
    inTest(async (client) => {
      const error = await client.query({ text: {} } as unknown as string).catch((e: Error) => e);
      expect(error).toMatchObject({
        message: 'A query must have either text or a name. Supplying neither is unsupported.',
      });
    }));
});
