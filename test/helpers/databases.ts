import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll } from 'vitest';
import { DROP_HOOK_TIMEOUT_MS } from './timeouts.js';

/** The server the test suite runs against; a superuser connection to its maintenance database. */
export const SERVER_URL = process.env.PGTWIN_TEST_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database URL on the test server for `database` (optionally as `user`). */
export function databaseUrl(database: string, user?: string, password?: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${database}`;
  if (user !== undefined) url.username = user;
  if (password !== undefined) url.password = password;
  return url.toString();
}

/** A name no other test file or run uses, safe as a database or role name. */
export function uniqueName(prefix: string): string {
  return `pgtwin_t_${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`.toLowerCase();
}

/**
 * Sessions on the maintenance database, shared by a worker's test files: a new session costs the server about
 * 25 ms of CPU on the 2-core machine, and the suite ran some 700 such one-statement sessions. Only the
 * maintenance database: a session left open on any other would keep it from being dropped or copied. No
 * statement here leaves session state (SET, locks, an open transaction) behind.
 */
let maintenance: pg.Pool | undefined;

function maintenancePool(): pg.Pool {
  if (!maintenance) {
    maintenance = new pg.Pool({
      connectionString: SERVER_URL,
      max: 4,
      idleTimeoutMillis: 1_000,
      // A worker with nothing else to do may exit with idle sessions open.
      allowExitOnIdle: true,
    });
    // An idle session the server ended (a test terminating backends) is replaced at the next query.
    maintenance.on('error', () => undefined);
  }
  return maintenance;
}

/** Runs one statement on the server's maintenance database (or, given `url`, on a session of its own there). */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  params: unknown[] = [],
  url = SERVER_URL,
): Promise<pg.QueryResult<R>> {
  if (url === SERVER_URL) return maintenancePool().query<R>(sql, params);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end();
  }
}

/**
 * Creates uniquely named databases (and roles) for one test file and drops them all after the file.
 * Call at the top level of a test file.
 */
export function useScratch(prefix: string) {
  const databases: string[] = [];
  const roles: string[] = [];

  afterAll(async () => {
    for (const db of databases.reverse()) {
      await adminQuery(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    }
    for (const role of roles) await dropRole(role);
  }, DROP_HOOK_TIMEOUT_MS);

  return {
    /** A fresh empty database; returns its name and URL. */
    async database(
      label = 'db',
      options: { template?: string } = {},
    ): Promise<{ name: string; url: string }> {
      const name = uniqueName(`${prefix}_${label}`);
      databases.push(name);
      const template = options.template ? ` TEMPLATE "${options.template}"` : '';
      await adminQuery(`CREATE DATABASE "${name}"${template}`);
      return { name, url: databaseUrl(name) };
    },
    /** A name reserved for a database the code under test creates; dropped after the file. */
    databaseName(label = 'db'): string {
      const name = uniqueName(`${prefix}_${label}`);
      databases.push(name);
      return name;
    },
    /** A name reserved for a role the code under test creates; dropped after the file. */
    roleName(label = 'role'): string {
      const name = uniqueName(`${prefix}_${label}`);
      roles.push(name);
      return name;
    },
  };
}

/**
 * Drops `role` with what it owns. pgtwin's templates outlive a run (they are the cache), and a child run a
 * test gave up on may still create one; a role cannot be dropped while it owns a database, so the drop is
 * retried for a while, and a final failure names what still depends on the role.
 */
async function dropRole(role: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await dropOwnedDatabases(role);
    await adminQuery(
      `DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN EXECUTE 'DROP OWNED BY "${role}"'; END IF; END $$`,
    ).catch(() => undefined);
    try {
      await adminQuery(`DROP ROLE IF EXISTS "${role}"`);
      return;
    } catch (error) {
      const { code, detail } = error as { code?: string; detail?: string };
      // 2BP01: objects still depend on the role.
      if (code !== '2BP01' || attempt >= 20) {
        throw new Error(
          `Could not drop role ${role}: ${(error as Error).message}${detail ? ` (${detail})` : ''}`,
          { cause: error },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** Drops every database `role` owns (pgtwin's templates, worker copies of a run that died), templates unflagged first. */
export async function dropOwnedDatabases(role: string): Promise<void> {
  const { rows } = await adminQuery<{ name: string }>(
    'SELECT datname AS name FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1)',
    [role],
  );
  for (const { name } of rows) {
    await adminQuery(`ALTER DATABASE "${name}" WITH IS_TEMPLATE false`);
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }
}
