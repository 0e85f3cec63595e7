import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  ConnectionError,
  ProvisionError,
  createLogger,
  provisionTestDatabase,
  dropTestDatabase,
  DBOperator,
} from 'pgtwin';
import { testConfig, SERVER } from '../helpers/config.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const scratch = useScratch('prov');

/**
 * The changes a provision made for its own role and database. Every provision also drops what crashed runs
 * left anywhere on the server, and the crash suite, running beside this file, leaves such databases on purpose.
 */
function ownChanges(result: { changes: string[] }): string[] {
  return result.changes.filter((change) => !/^dropped pgtwin_(wip|trash)_/.test(change));
}

describe('provisionTestDatabase', () => {
  it('creates the role and the database it owns, stamped, and a second run changes nothing', async () => {
    const database = scratch.databaseName('twin');
    const role = scratch.roleName('runner');
    const config = await testConfig({ test: { database, user: role, password: 'pw-123' } });

    const first = await provisionTestDatabase(config);
    expect(first).toMatchObject({ databaseCreated: true, roleCreated: true });
    expect(ownChanges(first)).toEqual([
      `created role ${role}`,
      `created database ${database} owned by ${role}`,
      `granted ${role} SET on session_replication_role`,
    ]);

    const { rows } = await adminQuery<{ owner: string; comment: string }>(
      `SELECT pg_get_userbyid(datdba) AS owner, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`,
      [database],
    );
    expect(rows[0]!.owner).toBe(role);
    expect(rows[0]!.comment).toMatch(/^pgtwin:\{"kind":"test"/);

    const second = await provisionTestDatabase(config);
    expect(second).toMatchObject({ databaseCreated: false, roleCreated: false });
    expect(ownChanges(second)).toEqual([]);

    // The role can create schemas and tables and do full CRUD in its database.
    await using db = new DBOperator({ testMode: 'e2e', config });
    await db.query('CREATE SCHEMA project_x');
    await db.query('CREATE TABLE project_x.t (id int primary key, v text)');
    await db.query(`INSERT INTO project_x.t VALUES (1, 'a')`);
    await db.query(`UPDATE project_x.t SET v = 'b'`);
    await db.query('CREATE TABLE public.u (id int)');
    await db.query('DROP TABLE public.u');
    expect(await db.count('project_x.t')).toBe(1);
    await db.query('DELETE FROM project_x.t');
    await db.close();

    expect(await dropTestDatabase(config)).toBe(true);
  });

  it('takes over a database that exists with another owner and lets the role log in', async () => {
    const database = scratch.databaseName('twin');
    const role = scratch.roleName('runner');
    await adminQuery(`CREATE ROLE "${role}" NOLOGIN`);
    const config = await testConfig({ test: { database, user: role } });
    await provisionTestDatabase(config);
    await adminQuery(`ALTER DATABASE "${database}" OWNER TO postgres`);
    await adminQuery(`ALTER ROLE "${role}" NOLOGIN`);
    const repaired = await provisionTestDatabase(config);
    expect(ownChanges(repaired)).toEqual([
      `allowed role ${role} to log in`,
      `made ${role} the owner of ${database}`,
    ]);
    expect(ownChanges(await provisionTestDatabase(config))).toEqual([]);
  });

  it('gives the role its schema public back, and takes an unmarked database of its name only when allowed', async () => {
    const database = scratch.databaseName('twin');
    const role = scratch.roleName('runner');
    const config = await testConfig({ test: { database, user: role, password: 'pw-456' } });
    await provisionTestDatabase(config);
    const onTest = async (sql: string) => {
      const client = new pg.Client({ ...SERVER, database });
      await client.connect();
      try {
        return (await client.query<{ owner: string }>(sql)).rows;
      } finally {
        await client.end();
      }
    };
    await onTest('ALTER SCHEMA public OWNER TO postgres');
    expect(ownChanges(await provisionTestDatabase(config))).toEqual([
      `made ${role} the owner of schema public`,
    ]);
    const publicOwner = `SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'public'`;
    expect((await onTest(publicOwner))[0]!.owner).toBe(role);

    // A database of that name pgtwin did not make, holding a table: refused; allowed, used as it is.
    await adminQuery(`DROP DATABASE "${database}"`);
    await adminQuery(`CREATE DATABASE "${database}" OWNER "${role}"`);
    await onTest('CREATE TABLE kept_by_user (id int)');
    await expect(provisionTestDatabase(config)).rejects.toThrow(/PGTWIN_ALLOW_UNMARKED=1/);
    const allowed = await testConfig({
      test: { database, user: role, password: 'pw-456' },
      // Unmarked databases are only ever touched when production's identity is known, so it must exist.
      production: { database: 'postgres' },
      env: { PGTWIN_ALLOW_UNMARKED: '1' },
    });
    expect(await provisionTestDatabase(allowed)).toMatchObject({ databaseCreated: false });
    expect(await onTest(`SELECT to_regclass('kept_by_user')::text AS owner`)).toEqual([
      { owner: 'kept_by_user' },
    ]);
  });

  it('provisions several test roles on one server at once, although their grants share one catalog row', async () => {
    // Each role gets SET on session_replication_role; those rights live in one shared pg_parameter_acl row,
    // which concurrent GRANTs fail to update ("tuple concurrently updated") unless tried again.
    const configs = await Promise.all(
      Array.from({ length: 8 }, () =>
        testConfig({ test: { database: scratch.databaseName('many'), user: scratch.roleName('many') } }),
      ),
    );
    const results = await Promise.allSettled(configs.map((config) => provisionTestDatabase(config)));
    expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    const { rows } = await adminQuery<{ has: boolean }>(
      `SELECT has_parameter_privilege(r, 'session_replication_role', 'SET') AS has FROM unnest($1::text[]) AS r`,
      [configs.map((config) => config.test.user)],
    );
    expect(rows.map((row) => row.has)).toEqual(configs.map(() => true));
  });

  it('says which privilege the admin role lacks', async () => {
    const weak = scratch.roleName('weak');
    const role = scratch.roleName('runner');
    await adminQuery(`CREATE ROLE "${weak}" LOGIN`);
    const config = await testConfig({
      test: { database: scratch.databaseName('twin'), user: role },
      admin: { user: weak },
    });
    const error = await provisionTestDatabase(config).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProvisionError);
    expect((error as ProvisionError).step).toBe('CREATEROLE');
    expect((error as Error).message).toContain(`The admin role "${weak}" lacks CREATEROLE`);
    expect((error as Error).message).toContain('TEST_DB_ADMIN_URL');

    await adminQuery(`CREATE ROLE "${role}" LOGIN`);
    const noDb = await provisionTestDatabase(config).catch((e: unknown) => e);
    expect((noDb as ProvisionError).step).toBe('CREATEDB');
    expect((noDb as Error).message).toContain(`ALTER ROLE "${weak}" CREATEDB`);
  });

  it('names host, port and the setting to change when the server is unreachable', async () => {
    const config = await testConfig({ admin: { port: 1 }, test: { port: 1 } });
    const error = await provisionTestDatabase(config).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toContain(`${SERVER.host}:1`);
    // The port was given as an option: the message names that option, where the user set it.
    expect((error as Error).message).toContain('change admin.host in options / admin.port in options');
  });

  it('never shows a password in logs or errors', async () => {
    const lines: string[] = [];
    const secrets = { prod: 'Prod-Secret-77', test: 'Test-Secret-88', admin: 'Admin-Secret-99' };
    const database = scratch.databaseName('twin');
    const role = scratch.roleName('runner');
    const config = await testConfig({
      production: { password: secrets.prod },
      test: { database, user: role, password: secrets.test },
      admin: { password: secrets.admin },
    });
    const logger = createLogger({
      debug: true,
      secrets: [config.production.password, config.test.password, config.admin.password],
      write: (line) => lines.push(line),
    });
    await provisionTestDatabase(config, { logger });
    logger.info(`connecting to ${config.test.url({ withPassword: true })} as ${config.admin}`);
    logger.info(`raw: postgres://someone:${secrets.prod}@h/db and password=${secrets.admin}`);

    const unreachable = await testConfig({
      admin: { port: 1, password: secrets.admin },
      test: { port: 1, password: secrets.test },
    });
    const error = (await provisionTestDatabase(unreachable).catch((e: unknown) => e)) as Error;
    const output = [...lines, error.message, JSON.stringify(config), String(config.admin)].join('\n');
    expect(lines.some((line) => line.includes('[pgtwin] debug: provision'))).toBe(true);
    for (const secret of Object.values(secrets)) expect(output).not.toContain(secret);

    // The password really was set on the role (pg_authid keeps a hash, never the text).
    const { rows } = await adminQuery<{ has: boolean }>(
      'SELECT rolpassword IS NOT NULL AS has FROM pg_authid WHERE rolname = $1',
      [role],
    );
    expect(rows[0]!.has).toBe(true);
    const client = new pg.Client({
      host: SERVER.host,
      port: SERVER.port,
      user: role,
      password: secrets.test,
      database,
    });
    await client.connect();
    await client.end();
  });
});
