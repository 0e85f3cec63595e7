import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  DatabaseSyncManager,
  DBOperator,
  ProductionGuardError,
  provisionTestDatabase,
  type ResolvedConfig,
} from 'pgtwin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { startAliasProxy, type StartedAliasProxy } from '../helpers/alias-proxy.js';
import { cliEnv, emptyDir, runCli, TEST_PASSWORD, type CliResult } from '../cli/run-cli.js';
import { SERVER, testConfig } from '../helpers/config.js';
import { adminQuery, databaseUrl, dropOwnedDatabases, SERVER_URL, useScratch } from '../helpers/databases.js';
import { root, runnerEnv, runRunner } from '../presets/example-run.js';

// A pooler (pgbouncer's [databases] section) may map the test database's name to production. Every name
// pgtwin compares is then right, and every statement sent on the test connection lands in production.
// The guard must judge the database the connection actually reached.

const scratch = useScratch('alias');
let production: string;
/** A copy of production taken before any case ran, to put production back after a case that damaged it. */
let pristine: string;
/** The test database name the proxy maps to production. */
let alias: string;
/** A test database name the proxy passes through unchanged. */
let twin: string;
let role: string;
let proxy: StartedAliasProxy;
let baseline: string;
let baselineRows: string;
const dumpDir = emptyDir();
const seeds = path.join(root, 'examples/vitest-kysely/seeds/seed_data.json');

/** The cause a refusal must name. */
const CAUSE = /production|not the test database|lands in/i;

beforeAll(async () => {
  production = (await scratch.database('prod')).name;
  await createContentgenProduction(databaseUrl(production), { data: FIXTURE_SIZES.tiny });
  pristine = (await scratch.database('pristine', { template: production })).name;
  alias = scratch.databaseName('alias');
  twin = scratch.databaseName('twin');
  role = scratch.roleName('user');
  // One login for production and the tests is common (a local superuser, an app owner). PostgreSQL's own
  // permissions then stop nothing, and pgtwin's guard is all that stands between the test connection and
  // production's rows. (With an unprivileged role, the writes fail on permissions instead of being refused.)
  await adminQuery(`CREATE ROLE "${role}" LOGIN SUPERUSER PASSWORD '${TEST_PASSWORD}'`);
  proxy = await startAliasProxy({
    upstream: { host: SERVER.host, port: SERVER.port },
    aliases: { [alias]: production, [twin]: twin },
  });
  afterAll(async () => {
    await proxy.close();
    rmSync(dumpDir, { recursive: true, force: true });
    // The decoy and the twin are pgtwin's test databases; their templates belong to the role.
    await dropOwnedDatabases(role);
  });

  const dumped = await runCli(['dump', '--out', dumpDir], { env: directEnv() });
  expect(dumped.code, dumped.stderr).toBe(0);
  baseline = await productionChecksum();
  baselineRows = await productionRows();
  // Deterministic once pg_dump's version lines and \restrict key are left out.
  expect(await productionChecksum()).toBe(baseline);
});

/**
 * Production as a string that any write changes: sha256 of its `pg_dump --create` (structure, rows,
 * ownership, grants, the database's comment) and of its row versions (each table's file and every row's
 * ctid and xmin), so rows deleted and copied back identical (a sync of production onto itself) count too.
 */
async function productionChecksum(): Promise<string> {
  const { stdout } = await promisify(execFile)('pg_dump', ['--create', '--dbname', databaseUrl(production)], {
    maxBuffer: 256 * 1024 * 1024,
  });
  const stable = stdout
    .split('\n')
    .filter((line) => !/^-- Dumped (from|by) /.test(line) && !/^\\(un)?restrict /.test(line))
    .join('\n');
  const { rows } = await adminQuery<{ versions: string }>(
    `SELECT string_agg(format('%s %s %s', c.oid::regclass, c.relfilenode, (xpath('/row/v/text()', query_to_xml(
              format('SELECT md5(string_agg(ctid::text || '':'' || xmin::text, '','' ORDER BY ctid)) AS v FROM %s',
                     c.oid::regclass), false, true, '')))[1]), E'\\n' ORDER BY c.oid::regclass::text) AS versions
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
    [],
    databaseUrl(production),
  );
  const hash = (text: string) => createHash('sha256').update(text).digest('hex');
  return `dump ${hash(stable)}, row versions ${hash(rows[0]!.versions)}`;
}

/** Row counts of production's tables, to say what a case did to it. */
async function productionRows(): Promise<string> {
  const { rows } = await adminQuery<{ counts: string }>(
    `SELECT string_agg(format('%s %s', t, (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM %s', t), false, true, '')))[1]), ', ' ORDER BY t) AS counts
       FROM unnest(ARRAY['public.clients', 'public.projects', 'public.prompts', 'public.object_models']) AS t`,
    [],
    databaseUrl(production),
  );
  return rows[0]!.counts;
}

/**
 * `undefined` when production is as it was; otherwise what changed, after putting production back from the
 * pristine copy so the next case starts from the same production.
 */
async function productionDamage(): Promise<string | undefined> {
  const now = await productionChecksum();
  if (now === baseline) return undefined;
  const what = now.split(', ')[0] === baseline.split(', ')[0] ? 'rows rewritten' : 'pg_dump changed';
  const damage = `production written (${what}); rows now ${await productionRows()} (were ${baselineRows})`;
  await adminQuery(`DROP DATABASE IF EXISTS "${production}" WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE "${production}" TEMPLATE "${pristine}"`);
  return damage;
}

/** The admin URL through the proxy (its `postgres` database is not aliased). */
function proxiedAdminUrl(): string {
  const url = new URL(SERVER_URL);
  url.hostname = proxy.host;
  url.port = String(proxy.port);
  return url.toString();
}

/** CLI environment: production at the real server, the test database `name` through the proxy. */
function proxiedEnv(admin: 'proxy' | 'direct', name = alias): Record<string, string> {
  return cliEnv({
    DB_NAME: production,
    TEST_DB_HOST: proxy.host,
    TEST_DB_PORT: String(proxy.port),
    TEST_DB_NAME: name,
    TEST_DB_USER: role,
    TEST_DB_ADMIN_URL: admin === 'proxy' ? proxiedAdminUrl() : SERVER_URL,
  });
}

/** CLI environment without the proxy: the alias name is then a database of its own. */
function directEnv(): Record<string, string> {
  return cliEnv({ DB_NAME: production, TEST_DB_NAME: alias, TEST_DB_USER: role });
}

/** The same settings as {@link proxiedEnv}, for the API. */
function proxiedConfig(admin: 'proxy' | 'direct'): Promise<ResolvedConfig> {
  const through = { host: proxy.host, port: proxy.port };
  return testConfig({
    env: { PGTWIN_PROVIDER: 'server' },
    production: { database: production },
    test: { ...through, database: alias, user: role, password: TEST_PASSWORD },
    admin: admin === 'proxy' ? through : {},
  });
}

async function databaseExists(name: string): Promise<boolean> {
  return (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
}

/**
 * A real, pgtwin-marked database under the alias name, as a setup run before the pooler was configured
 * leaves it: every name-based check (exists, carries the marker, is not DB_NAME) then passes.
 */
async function ensureDecoy(): Promise<void> {
  if (await databaseExists(alias)) return;
  await provisionTestDatabase(
    await testConfig({
      production: { database: production },
      test: { database: alias, user: role, password: TEST_PASSWORD },
    }),
  );
}

/** The state of a first run: no database under the alias name. */
async function withoutDecoy(): Promise<void> {
  await adminQuery(`DROP DATABASE IF EXISTS "${alias}" WITH (FORCE)`);
}

/** Asserts a refused command: exit 3, the cause named, no password, production unchanged. */
async function expectCliRefused(result: CliResult): Promise<void> {
  const damage = await productionDamage();
  const output = result.stdout + result.stderr;
  expect.soft(damage, `exit ${result.code}; output:\n${output}`).toBeUndefined();
  expect.soft(result.code, output).toBe(3);
  expect.soft(output).toMatch(CAUSE);
  expect.soft(output).not.toContain(TEST_PASSWORD);
}

/** Asserts an API call refused with a ProductionGuardError, production unchanged. */
async function expectApiRefused(call: () => Promise<unknown>): Promise<void> {
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  const damage = await productionDamage();
  const outcome = error instanceof Error ? `${error.name}: ${error.message}` : 'no error';
  expect.soft(damage, outcome).toBeUndefined();
  expect.soft(error, outcome).toBeInstanceOf(ProductionGuardError);
  expect.soft(outcome).toMatch(CAUSE);
}

describe('a test database name that a pooler maps to production', () => {
  it('the proxy alone breaks nothing: setup through it succeeds for a name it passes through', async () => {
    const result = await runCli(['setup'], { env: proxiedEnv('proxy', twin) });
    expect(result.code, result.stderr).toBe(0);
    expect(proxy.startups).toContainEqual({ asked: twin, reached: twin });
    expect(await productionDamage()).toBeUndefined();
    const { rows } = await adminQuery('SELECT count(*)::int AS n FROM public.prompts', [], databaseUrl(twin));
    expect(rows[0]!.n).toBeGreaterThan(0);
  });

  // setup and reset use the admin connection the most (provisioning, copying the template): both ways.
  // The other commands take the admin connection through the proxy, as a pooler in front of everything would.
  describe('command line', () => {
    it.each(['proxy', 'direct'] as const)('refuses setup (exit 3), admin connection %s', async (admin) => {
      await withoutDecoy();
      await expectCliRefused(await runCli(['setup'], { env: proxiedEnv(admin) }));
      expect(proxy.startups).toContainEqual({ asked: alias, reached: production });
    });

    it.each(['proxy', 'direct'] as const)('refuses reset (exit 3), admin connection %s', async (admin) => {
      await ensureDecoy();
      await expectCliRefused(await runCli(['reset'], { env: proxiedEnv(admin) }));
    });

    it('refuses sync (exit 3)', async () => {
      await ensureDecoy();
      await expectCliRefused(await runCli(['sync'], { env: proxiedEnv('proxy') }));
    });

    it('refuses restore of a snapshot (exit 3)', async () => {
      await ensureDecoy();
      await expectCliRefused(await runCli(['restore', dumpDir], { env: proxiedEnv('proxy') }));
    });

    it('gc of a stale database under the alias name leaves production alone', async () => {
      await ensureDecoy();
      const marker = { kind: 'test', run: 'gone-host:1', created: '2020-01-01T00:00:00.000Z' };
      await adminQuery(`COMMENT ON DATABASE "${alias}" IS 'pgtwin:${JSON.stringify(marker)}'`);
      const result = await runCli(['gc', '--prefix', alias, '--yes'], { env: proxiedEnv('proxy') });
      const output = result.stdout + result.stderr;
      expect.soft(await productionDamage(), output).toBeUndefined();
      expect.soft(await databaseExists(production)).toBe(true);
      // gc's targets are other databases: it may drop the stale one or refuse, nothing else.
      expect.soft([0, 3], output).toContain(result.code);
      expect.soft(output).not.toContain(TEST_PASSWORD);
    });
  });

  describe('API', () => {
    it('refuses DBOperator.resetTestDatabase()', async () => {
      await ensureDecoy();
      await using operator = new DBOperator({ testMode: 'e2e', config: await proxiedConfig('proxy') });
      await expectApiRefused(() => operator.resetTestDatabase());
    });

    it('refuses DBOperator.loadSeedData()', async () => {
      await ensureDecoy();
      await using operator = new DBOperator({ testMode: 'e2e', config: await proxiedConfig('proxy') });
      await expectApiRefused(() => operator.loadSeedData(seeds));
    });

    it('refuses DatabaseSyncManager.syncTables() into the test database', async () => {
      await ensureDecoy();
      await using sync = new DatabaseSyncManager({ config: await proxiedConfig('proxy') });
      await expectApiRefused(() => sync.syncTables({ sourceDb: 'production', targetDb: 'test' }));
    });

    it('refuses DatabaseSyncManager.restoreDump()', async () => {
      await ensureDecoy();
      await using sync = new DatabaseSyncManager({ config: await proxiedConfig('proxy') });
      await expectApiRefused(() => sync.restoreDump({ dir: dumpDir }));
    });

    it.each(['proxy', 'direct'] as const)(
      'refuses provisionTestDatabase(), admin connection %s',
      async (admin) => {
        await withoutDecoy();
        const config = await proxiedConfig(admin);
        await expectApiRefused(() => provisionTestDatabase(config));
      },
    );
  });

  it('fails a Vitest run whose committing beforeAll would write to production', async () => {
    // Under the repository, so the project's `pgtwin/vitest` resolves to this package; .pgtwin/ is ignored by git.
    mkdirSync(path.join(root, '.pgtwin'), { recursive: true });
    const project = mkdtempSync(path.join(root, '.pgtwin', 'alias-project-'));
    try {
      writeFileSync(
        path.join(project, 'vitest.config.mjs'),
        `import { defineConfig } from 'vitest/config';\n` +
          `import { pgtwin } from 'pgtwin/vitest';\n\n` +
          `export default defineConfig({ plugins: [pgtwin()], test: { include: ['*.test.mjs'] } });\n`,
      );
      writeFileSync(
        path.join(project, 'committing.test.mjs'),
        `import pg from 'pg';\n` +
          `import { beforeAll, expect, test } from 'vitest';\n\n` +
          `beforeAll(async () => {\n` +
          `  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });\n` +
          `  await client.connect();\n` +
          `  await client.query("INSERT INTO public.clients (name, slug) VALUES ('Committed', 'committed-by-beforeall')");\n` +
          `  await client.end();\n` +
          `});\n\n` +
          `test('runs after a committing beforeAll', () => expect(true).toBe(true));\n`,
      );
      await ensureDecoy();
      const run = await runRunner(
        ['node_modules/vitest/vitest.mjs', 'run', '--root', project, '--reporter=json', '--maxWorkers=1'],
        runnerEnv({
          DB_NAME: production,
          TEST_DB_HOST: proxy.host,
          TEST_DB_PORT: String(proxy.port),
          TEST_DB_NAME: alias,
          TEST_DB_USER: role,
          TEST_DB_PASS: TEST_PASSWORD,
          TEST_DB_ADMIN_URL: proxiedAdminUrl(),
          PGTWIN_PROVIDER: 'server',
        }),
      );
      expect.soft(await productionDamage(), run.output).toBeUndefined();
      expect.soft(run.code, run.output).not.toBe(0);
      expect.soft(run.output).toMatch(/refus/i);
      expect.soft(run.output).toMatch(CAUSE);
      expect.soft(Object.values(run.tests)).not.toContain('passed');
      expect.soft(run.output).not.toContain(TEST_PASSWORD);
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });
});
