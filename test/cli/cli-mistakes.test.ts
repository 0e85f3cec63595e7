import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { resolveConfig } from '../../src/config/resolve-config.js';
import { probePostgres } from '../../src/provider/probe-postgres.js';
import { EmbeddedServer } from '../../src/provider/embedded-server.js';
import { findFreePort } from '../../src/provider/find-free-port.js';
import { provisionTestDatabase } from '../../src/provision/provision-test-database.js';
import { adminQuery, databaseUrl, useScratch } from '../helpers/databases.js';
import { startPasswordServer, type PasswordServer } from '../helpers/password-server.js';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { cliEnv, emptyDir, runCli } from './run-cli.js';

const scratch = useScratch('mistakes');
let production: string;
let env: Record<string, string>;
let testDb: string;

/** `env` without TEST_DB_ADMIN_URL: the admin target then defaults to the test server and production's login. */
const withoutAdminUrl = (settings: Record<string, string>) => {
  const { TEST_DB_ADMIN_URL: _admin, ...rest } = { ...env, ...settings };
  return rest;
};

beforeAll(async () => {
  production = (await scratch.database('prod')).name;
  await createContentgenProduction(databaseUrl(production), { data: FIXTURE_SIZES.tiny });
  testDb = scratch.databaseName('test');
  env = cliEnv({ DB_NAME: production, TEST_DB_NAME: testDb, TEST_DB_USER: scratch.roleName('user') });
});

describe('mistakes are caught early and name the fix', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  test('a wrong TEST_DB_PORT under provider server is named as TEST_DB_PORT, not TEST_DB_ADMIN_URL: exit 4', async () => {
    const port = await findFreePort();
    const result = await runCli(['setup'], {
      env: withoutAdminUrl({ PGTWIN_PROVIDER: 'server', TEST_DB_PORT: String(port) }),
    });
    expect(result.code, result.stderr).toBe(4);
    expect(result.stderr).toContain(`Nothing answers at ${env.TEST_DB_HOST}:${port}.`);
    expect(result.stderr).toMatch(/Start PostgreSQL there or change TEST_DB_HOST \/ TEST_DB_PORT\./);
    expect(result.stderr).not.toContain('TEST_DB_ADMIN_URL');
  });

  test('a near-miss variable in .env is warned about with "did you mean", by every command and by doctor', async () => {
    const dir = emptyDir();
    writeFileSync(path.join(dir, '.env'), 'TEST_DB_NMAE=my_test_db\n');
    const warning =
      'TEST_DB_NMAE (in .env) is not a pgtwin variable and is ignored (did you mean TEST_DB_NAME?)';

    const doctor = await runCli(['doctor'], { env, cwd: dir });
    expect(doctor.stdout).toMatch(/! variables +1 variable pgtwin ignores look meant for it:/);
    expect(doctor.stdout).toContain(warning);
    expect(doctor.stdout).not.toMatch(/^All checks passed\.$/m);

    // sync: the warning first, then a refused table with a suggestion and advice the command line can follow.
    const sync = await runCli(['sync', 'public.promts'], { env, cwd: dir });
    expect(sync.code).toBe(2);
    expect(sync.stderr).toContain(`pgtwin sync: warning: ${warning}`);
    expect(sync.stderr).toContain(
      'public.promts: it is not listed in mirror.full (did you mean "public.prompts"?)',
    );
    expect(sync.stderr).toContain('add it to mirror.full in the pgtwin config');
    expect(sync.stderr).not.toContain('allowUnmirrored');
  });

  test('a missing or malformed seed file stops setup before any database work: exit 2, the file named', async () => {
    const dir = emptyDir();
    writeFileSync(path.join(dir, 'pgtwin.config.json'), JSON.stringify({ seeds: 'tests/missing.json' }));
    const missing = await runCli(['setup'], { env, cwd: dir });
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toContain('Seed file or directory tests/missing.json does not exist');
    expect(missing.stderr).not.toMatch(/\[pgtwin\] (provision|clone|sync)/);

    mkdirSync(path.join(dir, 'tests'));
    writeFileSync(path.join(dir, 'tests/bad.json'), '{ "public.clients": [ }\n');
    writeFileSync(path.join(dir, 'pgtwin.config.json'), JSON.stringify({ seeds: 'tests/bad.json' }));
    const malformed = await runCli(['reset'], { env, cwd: dir });
    expect(malformed.code, malformed.stderr).toBe(2);
    expect(malformed.stderr).toMatch(/pgtwin reset: tests\/bad\.json:1:/);
  });

  test('restore of a directory that does not exist is a usage error: exit 2', async () => {
    const result = await runCli(['restore', 'no/such/snapshot'], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /no\/such\/snapshot is not a directory\. Give the directory pgtwin dump --out wrote/,
    );
  });

  test('gc --json in a dry run lists would-be drops under wouldDrop, none under dropped', async () => {
    const stale = scratch.databaseName('stale');
    await adminQuery(`CREATE DATABASE "${stale}"`);
    const marker = { kind: 'test', run: 'gone-host:1', created: '2020-01-01T00:00:00.000Z' };
    await adminQuery(`COMMENT ON DATABASE "${stale}" IS 'pgtwin:${JSON.stringify(marker)}'`);
    const result = await runCli(['gc', '--prefix', stale, '--json'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.json()).toMatchObject({ dryRun: true, dropped: [], wouldDrop: [{ name: stale }] });
  });

  test('doctor does not advise setup when the test database is production', async () => {
    const role = scratch.roleName('login');
    await adminQuery(`CREATE ROLE "${role}" LOGIN`);
    const result = await runCli(['doctor'], {
      env: { ...env, TEST_DB_NAME: production, TEST_DB_USER: role },
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✗ guard/);
    expect(result.stdout).toContain('pgtwin setup may not change this database (see the guard check)');
    expect(result.stdout).not.toContain('pgtwin setup fixes ownership');
  });

  test('setup, then diff says "1 mirrored table differs"', async () => {
    const setup = await runCli(['setup'], { env });
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.stdout).toContain('Test database ready:');
    await adminQuery(
      `UPDATE public.prompts SET name = name || ' (edited)' WHERE id = (SELECT min(id) FROM public.prompts)`,
      [],
      databaseUrl(testDb),
    );
    const diff = await runCli(['diff', '--data-only'], { env });
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain('1 mirrored table differs');
  });

  test('restore loads the configured seeds again and says so', async () => {
    const dir = emptyDir();
    mkdirSync(path.join(dir, 'tests/data'), { recursive: true });
    writeFileSync(
      path.join(dir, 'tests/data/seed_data.json'),
      JSON.stringify({ 'public.clients': [{ name: 'Acme', slug: 'acme' }] }),
    );
    const snapshot = path.join(emptyDir(), 'snapshot');
    const dump = await runCli(['dump', '--out', snapshot], { env, cwd: dir });
    expect(dump.code, dump.stderr).toBe(0);
    const restore = await runCli(['restore', snapshot], { env, cwd: dir });
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(/Restored .*; seeds: 1 row from tests\/data\/seed_data\.json in /);
    const { rows } = await adminQuery('SELECT slug FROM public.clients', [], databaseUrl(testDb));
    expect(rows).toEqual([{ slug: 'acme' }]);
  });

  test('provider auto says in one line that it fell back to embedded and how to be strict; setup does not claim the stopped server stays ready', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'pgtwin-mistakes-embedded-'));
    try {
      const port = await findFreePort();
      const result = await runCli(['setup'], {
        env: withoutAdminUrl({
          PGTWIN_PROVIDER: 'auto',
          TEST_DB_PORT: String(port),
          PGTWIN_EMBEDDED_DATA_DIR: dataDir,
        }),
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain(
        `[pgtwin] warning: provider embedded: nothing (ECONNREFUSED) answers at ${env.TEST_DB_HOST}:${port} (TEST_DB_HOST/TEST_DB_PORT), ` +
          "so provider auto starts an embedded PostgreSQL instead (to use only the configured server, set provider: 'server' or PGTWIN_PROVIDER=server)",
      );
      expect(result.stdout).not.toContain('ready');
      expect(result.stdout).toMatch(
        /Test database built: .* The embedded server pgtwin started there stops as pgtwin setup exits/,
      );
      expect(result.stdout).toContain('Set embedded.persistent: true to keep the server running');
    } finally {
      // As root the cluster lives outside the data directory, in pgtwin's shared cache: removed with it.
      await new EmbeddedServer({ dataDir }).remove();
    }
  });

  test('a Unix-socket TEST_DB_HOST is probed as a socket', async () => {
    const { rows } = await adminQuery<{ dir: string }>(
      `SELECT split_part(current_setting('unix_socket_directories'), ',', 1) AS dir`,
    );
    const port = Number(env.TEST_DB_PORT);
    expect(await probePostgres(rows[0]!.dir.trim(), port)).toEqual({ answered: 'postgres' });
    expect((await probePostgres('/nonexistent-socket-dir', port)).answered).toBe('nothing');
  });
});

describe('on a server that asks for passwords', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  let server: PasswordServer;
  beforeAll(async () => {
    server = await startPasswordServer();
  });
  afterAll(() => server?.stop());

  const adminUrl = () => `postgres://postgres:${server.password}@${server.host}:${server.port}/postgres`;
  const settings = (extra: Record<string, string>) => ({
    ...env,
    TEST_DB_HOST: server.host,
    TEST_DB_PORT: String(server.port),
    TEST_DB_ADMIN_URL: adminUrl(),
    ...extra,
  });

  test('a wrong DB_PASS, used by the admin connection by default, is named as DB_PASS: exit 4', async () => {
    const { TEST_DB_ADMIN_URL: _admin, ...noAdmin } = settings({ DB_PASS: 'wrong-password' });
    const result = await runCli(['setup'], { env: noAdmin });
    expect(result.code, result.stderr).toBe(4);
    expect(result.stderr).toContain('The password for user "postgres" was rejected. Change DB_PASS.');
    expect(result.stderr).not.toContain('TEST_DB_ADMIN_URL');
  });

  test('a changed TEST_DB_PASS is applied to the role pgtwin created, and said so', async () => {
    const role = 'pgtwin_mistakes_role';
    const config = (password: string) =>
      resolveConfig({
        rootDir: emptyDir(),
        configFile: false,
        env: settings({ TEST_DB_USER: role, TEST_DB_PASS: password }),
      });
    expect(await provisionTestDatabase(await config('first-Pass-1'))).toMatchObject({ roleCreated: true });
    const changed = await provisionTestDatabase(await config('second-Pass-2'));
    expect(changed.changes).toContain(
      `changed the password of role ${role} to the configured one (TEST_DB_PASS)`,
    );
    const client = new pg.Client({
      host: server.host,
      port: server.port,
      user: role,
      password: 'second-Pass-2',
      database: testDb,
    });
    await client.connect();
    await client.end();
    expect((await provisionTestDatabase(await config('second-Pass-2'))).changes).toEqual([]);
  });

  test('a role pgtwin did not create that refuses TEST_DB_PASS stops setup with the fix: exit 4', async () => {
    const admin = new pg.Client({ connectionString: adminUrl() });
    await admin.connect();
    await admin.query(`CREATE ROLE hand_made LOGIN PASSWORD 'its-own-Pass-3'`);
    await admin.end();
    const result = await runCli(['setup'], {
      env: settings({ TEST_DB_USER: 'hand_made', TEST_DB_PASS: 'not-its-Pass' }),
    });
    expect(result.code, result.stderr).toBe(4);
    expect(result.stderr).toContain(
      'The role "hand_made" exists but refuses the configured password (TEST_DB_PASS). pgtwin did not create this role, so it leaves the role as it is. Set TEST_DB_PASS to the role\'s password',
    );
  });
});

describe('the API resolves the configuration itself and names directions one way', () => {
  test('provisionTestDatabase takes resolver options (or nothing) like new DBOperator() does', async () => {
    const role = scratch.roleName('api');
    const database = scratch.databaseName('api');
    const result = await provisionTestDatabase({
      rootDir: emptyDir(),
      configFile: false,
      env: { ...env, TEST_DB_NAME: database, TEST_DB_USER: role },
    });
    expect(result).toMatchObject({ databaseCreated: true, roleCreated: true });
  });

  test("DBConnector's target is explicit, testMode: 'e2e' still works, and the default is production", async () => {
    const { DBConnector } = await import('../../src/connection/db-connector.js');
    expect(new DBConnector({ target: 'test' }).which).toBe('test');
    expect(new DBConnector({ testMode: 'e2e' }).which).toBe('test');
    expect(new DBConnector().which).toBe('production');
    expect(() => new DBConnector({ target: 'prod' as 'production' })).toThrow(
      /target must be 'production' \(read-only\) or 'test', got "prod"/,
    );
    expect(() => new DBConnector({ target: 'production', testMode: 'e2e' })).toThrow(/contradicts/);
  });

  test('cloneStructure and syncTables both take { source, target }, with sourceDb / targetDb as aliases', async () => {
    const { DatabaseSyncManager } = await import('../../src/mirror/database-sync-manager.js');
    const manager = new DatabaseSyncManager({ config: { rootDir: emptyDir(), configFile: false, env } });
    await expect(manager.syncTables({ source: 'test', target: 'production' })).rejects.toThrow(
      /syncTables copies from 'production' to 'test' only/,
    );
    await expect(manager.cloneStructure({ sourceDb: 'test' })).rejects.toThrow(
      /cloneStructure copies from 'production' to 'test' only/,
    );
  });
});
