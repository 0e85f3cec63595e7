import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { adminQuery, databaseUrl, useScratch } from '../helpers/databases.js';
import { CHILD_TEST_TIMEOUT_MS, DROP_HOOK_TIMEOUT_MS } from '../helpers/timeouts.js';
import { cliEnv, emptyDir, productionState, runCli, TEST_PASSWORD } from './run-cli.js';

const scratch = useScratch('cli');
let production: string;
let env: Record<string, string>;
let testDb: string;
let role: string;
const dumpDir = emptyDir();

beforeAll(async () => {
  production = (await scratch.database('prod')).name;
  await createContentgenProduction(databaseUrl(production), { data: FIXTURE_SIZES.tiny });
  testDb = scratch.databaseName('test');
  role = scratch.roleName('user');
  env = cliEnv({ DB_NAME: production, TEST_DB_NAME: testDb, TEST_DB_USER: role });
  afterAll(async () => {
    // Templates the file's setups built belong to its role, which cannot be dropped while they exist.
    const { rows } = await adminQuery<{ name: string }>(
      'SELECT datname AS name FROM pg_database WHERE pg_get_userbyid(datdba) = $1',
      [role],
    );
    for (const { name } of rows) {
      await adminQuery(`ALTER DATABASE "${name}" WITH IS_TEMPLATE false`);
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    }
  }, DROP_HOOK_TIMEOUT_MS);
});

const testQuery = (sql: string) => adminQuery(sql, [], databaseUrl(testDb));

describe('pgtwin command line', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  test('prints general and per-command help and the version; unknown commands and options exit 2', async () => {
    const help = await runCli(['--help'], { env });
    expect(help.code).toBe(0);
    for (const name of ['setup', 'reset', 'sync', 'diff', 'dump', 'restore', 'doctor', 'gc'])
      expect(help.stdout).toContain(`  ${name} `);
    expect(help.stdout).toMatch(/3 {2}refused by the production guard/);

    const [helpDiff, diffHelp] = await Promise.all([
      runCli(['help', 'diff'], { env }),
      runCli(['diff', '--help'], { env }),
    ]);
    expect(helpDiff.code).toBe(0);
    expect(helpDiff.stdout).toContain('Usage: pgtwin diff');
    expect(diffHelp.stdout).toBe(helpDiff.stdout);

    const version = await runCli(['--version'], { env });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);

    const typo = await runCli(['dif'], { env });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('Unknown command "dif" (did you mean "diff"?)');
    const option = await runCli(['gc', '--bogus', '--json'], { env });
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("pgtwin gc: Unknown option '--bogus'. Run pgtwin help gc");
    expect(option.json()).toMatchObject({ ok: false, command: 'gc', exitCode: 2 });
    const missing = await runCli(['dump'], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--out DIR');
  });

  test('setup runs the whole pipeline once, one line per phase on stderr, the phases in --json', async () => {
    // PGTWIN_REBUILD: a template of the same fingerprint left by another run would otherwise be reused.
    const result = await runCli(['setup', '--json'], { env: { ...env, PGTWIN_REBUILD: '1' } });
    expect(result.code, result.stderr).toBe(0);
    for (const phase of ['config', 'provision', 'clone', 'sync', 'seed', 'template'])
      expect(result.stderr).toMatch(new RegExp(`^\\[pgtwin\\] ${phase} \\d+ ms`, 'm'));
    const json = result.json<{
      ok: boolean;
      template: string;
      phases: { name: string }[];
      test: { database: string; password: string };
    }>();
    expect(json.template).toMatch(/^pgtwin_tpl_/);
    expect(json.ok).toBe(true);
    expect(json.phases.map((phase) => phase.name)).toEqual([
      'config',
      'provision',
      'clone',
      'sync',
      'seed',
      'template',
    ]);
    expect(json.test).toMatchObject({ database: testDb, password: '*****' });
    expect(result.stdout + result.stderr).not.toContain(TEST_PASSWORD);
    const { rows } = await testQuery('SELECT count(*)::int AS n FROM public.prompts');
    expect(rows[0]!.n).toBeGreaterThan(0);

    const again = await runCli(['setup', '--json'], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/^\[pgtwin\] template .*(reused|built)/m);
  });

  test('diff reports no drift right after setup (exit 0)', async () => {
    const result = await runCli(['diff'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Structures are identical');
    expect(result.stdout).toMatch(/public\.prompts\s+same/);
    expect(result.stdout).toContain('No drift');
  });

  test('sync refreshes a mirrored table changed in the test database', async () => {
    await testQuery('DELETE FROM public.prompts');
    const drift = await runCli(['diff', '--data-only', '--json'], { env });
    expect(drift.code).toBe(1);
    expect(drift.json()).toMatchObject({ same: false, structure: null, mirror: { same: false } });

    const result = await runCli(['sync', 'public.prompts', '--json'], { env });
    expect(result.code, result.stderr).toBe(0);
    const { tables } = result.json<{ tables: { table: string; rowCount: number }[] }>();
    expect(tables).toEqual([{ table: 'public.prompts', rowCount: expect.any(Number) }]);
    expect(tables[0]!.rowCount).toBeGreaterThan(0);
    expect((await runCli(['diff', '--data-only'], { env })).code).toBe(0);

    const refused = await runCli(['sync', 'public.projects'], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('public.projects');
  });

  test('reset returns the test database to its known state', async () => {
    await testQuery(
      'CREATE TABLE public.left_by_a_test (id int); DELETE FROM public.object_models WHERE false',
    );
    const result = await runCli(['reset'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Reset .* in /m);
    const { rows } = await testQuery(`SELECT to_regclass('public.left_by_a_test') AS t`);
    expect(rows[0]!.t).toBeNull();
  });

  test('dump writes a snapshot that restore loads; a corrupted file is named, nothing changes, exit 1', async () => {
    const dumped = await runCli(['dump', '--out', dumpDir, '--json'], { env });
    expect(dumped.code, dumped.stderr).toBe(0);
    expect(dumped.json()).toMatchObject({ ok: true, dir: dumpDir });
    expect(existsSync(path.join(dumpDir, 'manifest.json'))).toBe(true);

    const restored = await runCli(['restore', dumpDir], { env });
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/Restored .* tables/);

    const copy = emptyDir();
    cpSync(dumpDir, copy, { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(copy, 'manifest.json'), 'utf8')) as {
      tables: { file: string }[];
    };
    const victim = manifest.tables.find((table) => table.file.includes('prompts'))!.file;
    const bytes = readFileSync(path.join(copy, victim));
    bytes[0] = bytes[0] === 0x31 ? 0x32 : 0x31;
    writeFileSync(path.join(copy, victim), bytes);
    const before = await testQuery('SELECT count(*)::int AS n FROM public.prompts');

    const corrupted = await runCli(['restore', copy, '--json'], { env });
    expect(corrupted.code).toBe(1);
    expect(corrupted.stderr).toContain(victim);
    expect(corrupted.stderr.trim().split('\n')).toHaveLength(1);
    expect(corrupted.json()).toMatchObject({
      ok: false,
      exitCode: 1,
      error: { name: 'DumpError', details: { file: victim } },
    });
    expect((await testQuery('SELECT count(*)::int AS n FROM public.prompts')).rows).toEqual(before.rows);
  });

  test('diff exits 1 and names a column added in production', async () => {
    await adminQuery('ALTER TABLE public.prompts ADD COLUMN review_note text', [], databaseUrl(production));
    const result = await runCli(['diff'], { env });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('~ changed table public.prompts');
    expect(result.stdout).toMatch(/- .*"?review_note"? text/);
    expect(result.stdout).toMatch(/Drift: 1 structure difference/);

    const json = await runCli(['diff', '--json'], { env });
    expect(json.code).toBe(1);
    const document = json.json<{
      same: boolean;
      structure: { changed: { key: string; expected: string }[] };
    }>();
    expect(document.same).toBe(false);
    expect(document.structure.changed.map((object) => object.key)).toContain('table public.prompts');
    expect(
      document.structure.changed.find((object) => object.key === 'table public.prompts')!.expected,
    ).toContain('review_note');
  });

  test('gc lists stale pgtwin databases in a dry run and drops them with --yes', async () => {
    const stale = scratch.databaseName('stale');
    await adminQuery(`CREATE DATABASE "${stale}"`);
    const marker = { kind: 'test', run: 'gone-host:1', created: '2020-01-01T00:00:00.000Z' };
    await adminQuery(`COMMENT ON DATABASE "${stale}" IS 'pgtwin:${JSON.stringify(marker)}'`);
    const exists = async () =>
      (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [stale])).rows.length === 1;

    const dry = await runCli(['gc', '--prefix', stale], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would drop ${stale} (test of run gone-host:1`);
    expect(dry.stdout).toContain('pgtwin gc --yes');
    expect(await exists()).toBe(true);

    const done = await runCli(['gc', '--prefix', stale, '--yes', '--json'], { env });
    expect(done.code, done.stderr).toBe(0);
    expect(done.json()).toMatchObject({ ok: true, dryRun: false, dropped: [{ name: stale }] });
    expect(await exists()).toBe(false);

    const badAge = await runCli(['gc', '--older-than', 'soon'], { env });
    expect(badAge.code).toBe(2);
    expect(badAge.stderr).toContain('--older-than');
  });

  test.each([['setup'], ['reset'], ['sync'], ['restore', '<dump>'], ['gc', '--yes', '--older-than', '0']])(
    'refuses %s pointed at production (TEST_DB_NAME = DB_NAME): exit 3, nothing changed',
    async (...args) => {
      const role = scratch.roleName('refused');
      const atProduction = { ...env, TEST_DB_NAME: production, TEST_DB_USER: role };
      const before = await productionState(production, role);
      const result = await runCli([...args.map((arg) => (arg === '<dump>' ? dumpDir : arg)), '--json'], {
        env: atProduction,
      });
      expect(result.code, result.stderr).toBe(3);
      expect(result.stderr).toMatch(/Refused to .* it is the production database/);
      // Phase lines (setup) aside, the failure is one line.
      expect(result.stderr.split('\n').filter((line) => line.startsWith('pgtwin '))).toHaveLength(1);
      expect(result.json()).toMatchObject({
        ok: false,
        exitCode: 3,
        error: { name: 'ProductionGuardError' },
      });
      expect(await productionState(production, role)).toEqual(before);
    },
  );
});
