import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sql as drizzleSql, type SQL } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js';
import knexFactory, { type Knex } from 'knex';
import { CompiledQuery, Kysely, PostgresDialect, type ControlledTransaction } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { createPool, sql as slonikSql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';

/** How the application reaches the database in a scenario. */
export type ClientKind =
  | 'pg Client'
  | 'pg Pool'
  | 'Knex'
  | 'Kysely'
  | 'Drizzle (node-postgres)'
  | 'postgres.js'
  | 'Drizzle (postgres.js)'
  | 'slonik'
  | 'child process';
export const CLIENT_KINDS: ClientKind[] = [
  'pg Client',
  'pg Pool',
  'Knex',
  'Kysely',
  'Drizzle (node-postgres)',
  'postgres.js',
  'Drizzle (postgres.js)',
  'slonik',
  'child process',
];

export interface QueryOutcome {
  rows: Record<string, unknown>[];
  /** The command tag, where the library exposes it. */
  command?: string;
}

/** Runs SQL (`$1` placeholders) on one connection, or in one transaction of the library. */
export interface Executor {
  query(sql: string, params?: unknown[]): Promise<QueryOutcome>;
  /** A nested transaction the way the library makes one (savepoints); throwing rolls it back. */
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>;
}

/** The application's database access through one library, as it would hold it for a test file. */
export interface Driver extends Executor {
  readonly kind: ClientKind;
  /** Runs `fn` on one connection held for its duration (raw BEGIN/COMMIT go through it). */
  pinned<T>(fn: (connection: Executor) => Promise<T>): Promise<T>;
  /** Runs `fn` with two connections held at the same time. */
  twoConnections<T>(fn: (a: Executor, b: Executor) => Promise<T>): Promise<T>;
  end(): Promise<void>;
}

export function createDriver(kind: ClientKind, url: string, poolMax = 5): Driver {
  switch (kind) {
    case 'pg Client':
      return clientDriver(url);
    case 'pg Pool':
      return poolDriver(new pg.Pool({ connectionString: url, max: poolMax }));
    case 'Knex':
      return knexDriver(knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: poolMax } }));
    case 'Kysely':
      return kyselyDriver(
        new Kysely<Record<string, never>>({
          dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: poolMax }) }),
        }),
      );
    case 'Drizzle (node-postgres)': {
      const pool = new pg.Pool({ connectionString: url, max: poolMax });
      return { ...poolDriver(pool), kind, ...drizzleExecutor(drizzleNodePg({ client: pool })) };
    }
    case 'postgres.js':
      return postgresJsDriver(postgresJs(url, poolMax));
    case 'Drizzle (postgres.js)': {
      const sql = postgresJs(url, poolMax);
      return { ...postgresJsDriver(sql), kind, ...drizzleExecutor(drizzlePostgresJs({ client: sql })) };
    }
    case 'slonik':
      return slonikDriver(createPool(url, { maximumPoolSize: poolMax }));
    case 'child process':
      return childProcessDriver(url);
  }
}

type Run = (sql: string, params?: unknown[]) => Promise<QueryOutcome>;

/** A client-level executor: transactions with BEGIN/COMMIT, nested ones with SAVEPOINT. */
function sqlExecutor(run: Run, depth = 0): Executor {
  const executor: Executor = {
    async query(sql, params) {
      const result = await run(sql, params);
      return { rows: result.rows, command: result.command };
    },
    async transaction(fn) {
      const name = `sp_${depth + 1}`;
      await run(depth === 0 ? 'BEGIN' : `SAVEPOINT ${name}`);
      try {
        const value = await fn(sqlExecutor(run, depth + 1));
        await run(depth === 0 ? 'COMMIT' : `RELEASE SAVEPOINT ${name}`);
        return value;
      } catch (error) {
        await run(depth === 0 ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${name}`);
        throw error;
      }
    },
  };
  return executor;
}

function clientDriver(url: string): Driver {
  const clients: pg.Client[] = [];
  const open = async () => {
    const client = new pg.Client({ connectionString: url });
    clients.push(client);
    await client.connect();
    return client;
  };
  let main: Promise<pg.Client> | undefined;
  const executor = sqlExecutor(async (sql, params) => (await (main ??= open())).query(sql, params));
  return {
    kind: 'pg Client',
    ...executor,
    pinned: (fn) => fn(executor),
    async twoConnections(fn) {
      const [a, b] = await Promise.all([open(), open()]);
      try {
        return await fn(
          sqlExecutor((s, p) => a.query(s, p)),
          sqlExecutor((s, p) => b.query(s, p)),
        );
      } finally {
        await Promise.all([a.end(), b.end()]);
      }
    },
    end: async () => void (await Promise.all(clients.map((client) => client.end()))),
  };
}

function poolDriver(pool: pg.Pool): Driver {
  const checkout = async <T>(fn: (connection: Executor) => Promise<T>) => {
    const client = await pool.connect();
    try {
      return await fn(sqlExecutor((s, p) => client.query(s, p)));
    } finally {
      client.release();
    }
  };
  return {
    kind: 'pg Pool',
    query: async (sql, params) => {
      const result = await pool.query(sql, params);
      return { rows: result.rows, command: result.command };
    },
    transaction: (fn) => checkout((connection) => connection.transaction(fn)),
    pinned: checkout,
    twoConnections: (fn) => checkout((a) => checkout((b) => fn(a, b))),
    end: () => pool.end(),
  };
}

const knexSql = (sql: string) => sql.replace(/\$\d+/g, '?');

function knexExecutor(knex: Knex | Knex.Transaction, connection?: unknown): Executor {
  return {
    async query(sql, params = []) {
      const builder = knex.raw(knexSql(sql), params as Knex.RawBinding[]);
      const result = (await (connection ? builder.connection(connection) : builder)) as pg.QueryResult;
      return { rows: result.rows, command: result.command };
    },
    transaction: (fn) => knex.transaction((trx) => fn(knexExecutor(trx))),
  };
}

function knexDriver(knex: Knex): Driver {
  const pinned = async <T>(fn: (connection: Executor) => Promise<T>) => {
    const connection = await knex.client.acquireConnection();
    try {
      return await fn(knexExecutor(knex, connection));
    } finally {
      await knex.client.releaseConnection(connection);
    }
  };
  return {
    kind: 'Knex',
    ...knexExecutor(knex),
    pinned,
    // A transaction holds one connection while the second query takes another from the pool.
    twoConnections: (fn) => knex.transaction((trx) => fn(knexExecutor(trx), knexExecutor(knex))),
    end: () => knex.destroy(),
  };
}

type AnyKysely = Kysely<Record<string, never>>;

function kyselyExecutor(db: AnyKysely, depth = 0): Executor {
  return {
    async query(sql, params = []) {
      const result = await db.executeQuery(CompiledQuery.raw(sql, params));
      return { rows: result.rows as Record<string, unknown>[] };
    },
    async transaction(fn) {
      if (depth === 0) return controlledTransaction(db, fn);
      const trx = db as unknown as ControlledTransaction<Record<string, never>, string[]>;
      const name = `sp_${depth}`;
      const withSavepoint = await trx.savepoint(name).execute();
      try {
        const value = await fn(kyselyExecutor(withSavepoint as unknown as AnyKysely, depth + 1));
        await withSavepoint.releaseSavepoint(name).execute();
        return value;
      } catch (error) {
        await withSavepoint.rollbackToSavepoint(name).execute();
        throw error;
      }
    },
  };
}

async function controlledTransaction<T>(db: AnyKysely, fn: (tx: Executor) => Promise<T>): Promise<T> {
  const trx = await db.startTransaction().execute();
  try {
    const value = await fn(kyselyExecutor(trx as unknown as AnyKysely, 1));
    await trx.commit().execute();
    return value;
  } catch (error) {
    await trx.rollback().execute();
    throw error;
  }
}

function kyselyDriver(db: AnyKysely): Driver {
  return {
    kind: 'Kysely',
    ...kyselyExecutor(db),
    pinned: (fn) =>
      db.connection().execute((connection) => fn(kyselyExecutor(connection as unknown as AnyKysely))),
    twoConnections: (fn) => controlledTransaction(db, (trx) => fn(trx, kyselyExecutor(db))),
    end: () => db.destroy(),
  };
}

function postgresJs(url: string, max: number): postgres.Sql {
  return postgres(url, { max, onnotice: () => undefined });
}

function postgresJsRun(sql: postgres.Sql | postgres.ReservedSql): Run {
  return async (text, params = []) => {
    const result = await serverErrors(sql.unsafe(text, params as postgres.ParameterOrJSON<never>[]));
    return { rows: [...result] as Record<string, unknown>[], command: result.command };
  };
}

/**
 * Runs `work`, rethrowing the server's error as node-postgres names its fields: Drizzle and slonik wrap it
 * (`cause`), postgres.js names the violated constraint `constraint_name`. The scenarios check those fields.
 * Under Jest, slonik's error reaches the test wrapped once more: slonik emits it on an `EventEmitter` without
 * an error listener, and Node, not recognising an Error made in Jest's sandbox, throws `ERR_UNHANDLED_ERROR`
 * around it (`context`), with or without pgtwin.
 */
async function serverErrors<T>(work: PromiseLike<T>): Promise<T> {
  try {
    return await work;
  } catch (thrown) {
    const { code, context } = thrown as { code?: string; context?: unknown };
    const error = code === 'ERR_UNHANDLED_ERROR' ? context : thrown;
    const cause = (error as { cause?: unknown }).cause;
    const server = (cause ?? error) as { constraint_name?: string; constraint?: string };
    if (server.constraint_name !== undefined) server.constraint ??= server.constraint_name;
    throw server;
  }
}

function postgresJsTransaction(sql: postgres.TransactionSql, depth: number): Executor {
  return {
    query: postgresJsRun(sql as unknown as postgres.Sql),
    transaction: (fn) =>
      sql.savepoint((nested) => fn(postgresJsTransaction(nested, depth + 1))) as Promise<never>,
  };
}

/** Reserved connections for raw BEGIN/COMMIT: postgres.js refuses them on its pool (UNSAFE_TRANSACTION). */
function postgresJsPinned(sql: postgres.Sql) {
  return async <T>(fn: (connection: Executor) => Promise<T>): Promise<T> => {
    const reserved = await sql.reserve();
    try {
      return await fn(sqlExecutor(postgresJsRun(reserved)));
    } finally {
      reserved.release();
    }
  };
}

function postgresJsDriver(sql: postgres.Sql): Driver {
  const pinned = postgresJsPinned(sql);
  return {
    kind: 'postgres.js',
    query: postgresJsRun(sql),
    transaction: (fn) => sql.begin((tx) => fn(postgresJsTransaction(tx, 1))) as Promise<never>,
    pinned,
    twoConnections: (fn) => pinned((a) => pinned((b) => fn(a, b))),
    end: () => sql.end({ timeout: 5 }),
  };
}

/** `$1`-style SQL as a Drizzle `SQL` with its values as parameters. */
function drizzleQuery(text: string, params: unknown[]): SQL {
  const parts = text.split(/\$\d+/);
  const values = [...text.matchAll(/\$(\d+)/g)].map((match) => params[Number(match[1]) - 1]);
  return drizzleSql.join(
    parts.flatMap((part, i) =>
      i < values.length ? [drizzleSql.raw(part), drizzleSql.param(values[i])] : [drizzleSql.raw(part)],
    ),
  );
}

/** A Drizzle database or transaction, over either driver. */
interface DrizzleDatabase {
  execute(query: SQL): PromiseLike<unknown>;
  transaction<T>(fn: (tx: DrizzleDatabase) => Promise<T>): Promise<T>;
}

/** Drizzle's queries and transactions; connections are the driver's own (raw BEGIN/COMMIT go through them). */
function drizzleExecutor(db: DrizzleDatabase): Executor {
  return {
    async query(text, params = []) {
      // postgres.js answers with its row list, node-postgres with its QueryResult.
      const result = (await serverErrors(db.execute(drizzleQuery(text, params)))) as
        postgres.RowList<Record<string, unknown>[]> | pg.QueryResult;
      return { rows: Array.isArray(result) ? [...result] : result.rows, command: result.command };
    },
    // Over node-postgres, Drizzle sends COMMIT itself and wraps a deferred constraint's error too.
    transaction: (fn) => serverErrors(db.transaction((tx) => fn(drizzleExecutor(tx)))),
  };
}

type SlonikConnection = Pick<DatabaseTransactionConnection, 'query' | 'transaction'>;

/** `$1`-style SQL as a slonik query token (arrays as `text[]`). */
function slonikQuery(text: string, params: unknown[]) {
  const parts = text.split(/\$\d+/);
  const values = [...text.matchAll(/\$(\d+)/g)].map((match) => {
    const value = params[Number(match[1]) - 1];
    return Array.isArray(value) ? slonikSql.array(value as string[], 'text') : (value as string | number);
  });
  const strings = Object.freeze(Object.assign([...parts], { raw: Object.freeze([...parts]) }));
  return slonikSql.unsafe(strings, ...values);
}

function slonikRun(connection: Pick<SlonikConnection, 'query'>): Run {
  return async (text, params = []) => {
    const result = await serverErrors(connection.query(slonikQuery(text, params)));
    return { rows: [...result.rows] as Record<string, unknown>[], command: result.command };
  };
}

function slonikExecutor(connection: SlonikConnection): Executor {
  return {
    query: slonikRun(connection),
    transaction: (fn) => serverErrors(connection.transaction((tx) => fn(slonikExecutor(tx)))),
  };
}

function slonikDriver(poolPromise: Promise<DatabasePool>): Driver {
  const pool = () => poolPromise;
  const pinned = async <T>(fn: (connection: Executor) => Promise<T>): Promise<T> =>
    (await pool()).connect((connection) => fn(sqlExecutor(slonikRun(connection))));
  return {
    kind: 'slonik',
    query: async (text, params) => slonikRun(await pool())(text, params),
    transaction: async (fn) => serverErrors((await pool()).transaction((tx) => fn(slonikExecutor(tx)))),
    pinned,
    twoConnections: (fn) => pinned((a) => pinned((b) => fn(a, b))),
    end: async () => (await pool()).end(),
  };
}

const CHILD_CLIENT = fileURLToPath(new URL('child-client.mjs', import.meta.url));

/** Statements run by node-postgres in another process, each named connection its own socket there. */
function childProcessDriver(url: string): Driver {
  let child: ChildProcess | undefined;
  let nextId = 0;
  let nextConnection = 0;
  const pending = new Map<
    number,
    { resolve: (value: QueryOutcome) => void; reject: (error: Error) => void }
  >();
  const start = () => {
    if (child) return child;
    child = fork(CHILD_CLIENT, { env: { ...process.env, TEST_DATABASE_URL: url }, stdio: 'inherit' });
    child.on(
      'message',
      (reply: {
        id: number;
        rows?: Record<string, unknown>[];
        command?: string;
        error?: Record<string, string>;
      }) => {
        const waiter = pending.get(reply.id);
        pending.delete(reply.id);
        if (reply.error) waiter?.reject(Object.assign(new Error(reply.error.message), reply.error));
        else waiter?.resolve({ rows: reply.rows ?? [], command: reply.command });
      },
    );
    return child;
  };
  const send = (message: object) =>
    new Promise<QueryOutcome>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      start().send({ id, ...message });
    });
  const on =
    (connection: string): Run =>
    (sql, params = []) =>
      send({ connection, sql, params });
  const pinned = async <T>(fn: (connection: Executor) => Promise<T>): Promise<T> => {
    const connection = `pinned-${nextConnection++}`;
    try {
      return await fn(sqlExecutor(on(connection)));
    } finally {
      await send({ connection, release: true });
    }
  };
  const main = sqlExecutor(on('main'));
  return {
    kind: 'child process',
    query: main.query,
    transaction: (fn) => pinned((connection) => connection.transaction(fn)),
    pinned,
    twoConnections: (fn) => pinned((a) => pinned((b) => fn(a, b))),
    async end() {
      const running = child;
      child = undefined;
      if (!running) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.disconnect();
      await exited;
    },
  };
}
