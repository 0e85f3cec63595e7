import knexFactory, { type Knex } from 'knex';
import { CompiledQuery, Kysely, PostgresDialect, type ControlledTransaction } from 'kysely';
import pg from 'pg';

/** How the application reaches the database in a scenario. */
export type ClientKind = 'pg Client' | 'pg Pool' | 'Knex' | 'Kysely';
export const CLIENT_KINDS: ClientKind[] = ['pg Client', 'pg Pool', 'Knex', 'Kysely'];

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
  }
}

/** A client-level executor: transactions with BEGIN/COMMIT, nested ones with SAVEPOINT. */
function sqlExecutor(run: (sql: string, params?: unknown[]) => Promise<pg.QueryResult>, depth = 0): Executor {
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
