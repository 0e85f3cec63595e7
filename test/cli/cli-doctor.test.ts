import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createContentgenProduction } from '../../fixtures/contentgen/index.js';
import { databaseUrl, useScratch } from '../helpers/databases.js';
import { startPasswordRejectingServer } from './fake-postgres.js';
import { closedPort } from '../helpers/closed-port.js';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { cliEnv, emptyDir, runCli, TEST_PASSWORD } from './run-cli.js';

interface DoctorJson {
  ok: boolean;
  exitCode: number;
  checks: { name: string; status: string; message: string; details?: string[] }[];
}

const scratch = useScratch('clidoc');
let env: Record<string, string>;
let production: string;

beforeAll(async () => {
  production = (await scratch.database('prod')).name;
  await createContentgenProduction(databaseUrl(production), { data: false });
  env = cliEnv({
    DB_NAME: production,
    TEST_DB_NAME: scratch.databaseName('test'),
    TEST_DB_USER: scratch.roleName('user'),
  });
});

/** A project directory with `document` as its default seed file. */
function seedDir(document: unknown): string {
  const cwd = emptyDir();
  mkdirSync(path.join(cwd, 'tests/data'), { recursive: true });
  writeFileSync(path.join(cwd, 'tests/data/seed_data.json'), JSON.stringify(document, null, 2));
  return cwd;
}

describe('pgtwin doctor', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  test('passes on a working setup, saying where each value came from, passwords masked', async () => {
    const cwd = emptyDir();
    writeFileSync(
      path.join(cwd, 'pgtwin.config.json'),
      JSON.stringify({
        admin: { url: `postgres://postgres:Adm1n-Secret@127.0.0.1:5432/postgres` },
        projectSchemas: 'project_*',
      }),
    );
    writeFileSync(path.join(cwd, '.env.ci'), 'TEST_DB_PORT=5432\n');
    const result = await runCli(['doctor', '--env-file', '.env.ci'], { env, cwd });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const out = result.stdout;
    expect(out).toMatch(/^✓ config +valid; config file pgtwin\.config\.json, env files \.env\.ci/m);
    expect(out).toMatch(/test\.port +5432 +← TEST_DB_PORT \(environment\)/);
    expect(out).toMatch(/admin\.user +postgres +← pgtwin\.config\.json/);
    expect(out).toMatch(/projectSchemas +project_\* +← pgtwin\.config\.json/);
    expect(out).toMatch(/test\.password +\*{5} +← TEST_DB_PASS \(environment\)/);
    expect(out).toMatch(
      /^✓ production +postgres@127\.0\.0\.1:5432\/\S+ answers: PostgreSQL \S+, not encrypted \(sslmode=disable\)/m,
    );
    expect(out).toMatch(/^✓ test server +PostgreSQL answers at 127\.0\.0\.1:5432/m);
    expect(out).toMatch(
      /^✓ admin +postgres@127\.0\.0\.1:5432\/postgres answers: PostgreSQL \S+, not encrypted \(sslmode=disable\), superuser/m,
    );
    expect(out).toMatch(
      /^✓ test role +role \S+ and database \S+ do not exist yet; pgtwin setup creates them/m,
    );
    expect(out).toMatch(/^✓ versions +production PostgreSQL/m);
    expect(out).toMatch(/^✓ guard +a destructive operation on .* would be allowed/m);
    expect(out).toMatch(/^[✓-] embedded /m);
    expect(out).toMatch(/^[✓-] container /m);
    expect(out).toMatch(/^[✓!] stale /m);
    expect(out).toMatch(/^- seeds +none \(tests\/data\/seed_data\.json does not exist\)/m);
    expect(out + result.stderr).not.toContain(TEST_PASSWORD);
    expect(out + result.stderr).not.toContain('Adm1n-Secret');
  });

  test("plans the seed files against production's structure, test-only project schemas included", async () => {
    const cwd = seedDir({
      $projectSchemas: ['project_demo'],
      'public.clients': [{ $key: 'acme', name: 'Acme', slug: 'acme' }],
      'public.projects': [
        { $key: 'demo', slug: 'demo', name: 'Demo', client_id: { $ref: 'public.clients.acme' } },
      ],
      'project_demo.content_entries': [
        { $count: 2, project_id: { $ref: 'public.projects.demo' }, object_model_id: 1 },
      ],
    });
    const result = await runCli(['doctor'], { env, cwd });
    expect(result.stdout).toMatch(
      /^✓ seeds +tests\/data\/seed_data\.json: 4 rows planned against production's structure/m,
    );
    expect(result.stdout).toMatch(/^ +project_demo\.content_entries: 2$/m);
  });

  test('fails on a seed mistake a load would report, such as a where lookup into a mirrored table', async () => {
    const cwd = seedDir({
      'public.clients': [{ $key: 'acme', name: 'Acme', slug: 'acme' }],
      'public.projects': [
        { $key: 'demo', slug: 'demo', name: 'Demo', client_id: { $ref: 'public.clients.acme' } },
      ],
      'project_alpha.content_entries': [
        {
          project_id: { $ref: 'public.projects.demo' },
          object_model_id: { $ref: 'public.object_models', where: { name: 'Article' } },
        },
      ],
    });
    const result = await runCli(['doctor', '--json'], { env, cwd });
    expect(result.code).toBe(1);
    expect(result.json<DoctorJson>().checks.find((check) => check.name === 'seeds')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(
        /^tests\/data\/seed_data\.json:\d+:\d+ .*No row of public\.object_models matches \{"name":"Article"\}/,
      ),
    });
  });

  test('fails the guard check when the test database is production, and reports it in --json', async () => {
    const result = await runCli(['doctor', '--json'], { env: { ...env, TEST_DB_NAME: production } });
    expect(result.code).toBe(1);
    const json = result.json<DoctorJson>();
    expect(json).toMatchObject({ ok: false, exitCode: 1 });
    expect(json.checks.find((check) => check.name === 'guard')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('it is the production database'),
    });
    expect(result.stderr).toBe('');
  });

  test('marks an unreachable test server as failed and exits 1', async () => {
    const port = String(await closedPort());
    const result = await runCli(['doctor'], { env: { ...env, TEST_DB_PORT: port } });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(
        `^✗ test server +nothing answers \\(ECONNREFUSED\\) at 127\\.0\\.0\\.1:${port}\\. Start PostgreSQL there or change TEST_DB_HOST / TEST_DB_PORT`,
        'm',
      ),
    );
    expect(result.stdout).toContain('1 check failed.');
  });

  test('marks a rejected password as failed and never prints it', async () => {
    const server = await startPasswordRejectingServer();
    try {
      const result = await runCli(['doctor', '--json'], {
        env: {
          ...env,
          TEST_DB_PORT: String(server.port),
          TEST_DB_ADMIN_URL: `postgres://postgres:Adm1n-Secret@127.0.0.1:${server.port}/postgres`,
        },
      });
      expect(result.code).toBe(1);
      const checks = result.json<DoctorJson>().checks;
      expect(checks.find((check) => check.name === 'admin')).toMatchObject({
        status: 'fail',
        message: expect.stringContaining(
          'The password for user "postgres" was rejected. Change TEST_DB_ADMIN_URL.',
        ),
      });
      expect(checks.find((check) => check.name === 'test role')).toMatchObject({
        status: 'fail',
        message: expect.stringMatching(/The password for user "\S+" was rejected\. Change TEST_DB_PASS\./),
      });
      const config = checks.find((check) => check.name === 'config')!;
      expect(config.details).toContainEqual(
        expect.stringMatching(/^admin\.password +\*{5} +← TEST_DB_ADMIN_URL/),
      );
      expect(result.stdout + result.stderr).not.toContain(TEST_PASSWORD);
      expect(result.stdout + result.stderr).not.toContain('Adm1n-Secret');

      const human = await runCli(['doctor'], {
        env: {
          ...env,
          TEST_DB_PORT: String(server.port),
          TEST_DB_ADMIN_URL: `postgres://postgres:Adm1n-Secret@127.0.0.1:${server.port}/postgres`,
        },
      });
      expect(human.stdout).toMatch(/^✗ test role .* was rejected/m);
      expect(human.stdout + human.stderr).not.toContain('Adm1n-Secret');
      expect(human.stdout + human.stderr).not.toContain(TEST_PASSWORD);
    } finally {
      await server.close();
    }
  });

  test('exits 2 on an invalid configuration, naming the variable', async () => {
    const result = await runCli(['doctor'], { env: { ...env, TEST_DB_PORT: 'fivefour' } });
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/^✗ config +TEST_DB_PORT \(from environment\) must be a port number/m);
  });
});

describe('errors', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  test('a missing test database is a database error (exit 4) in one message plus a hint; --debug adds the stack', async () => {
    const result = await runCli(['reset'], { env });
    expect(result.code).toBe(4);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^pgtwin reset: Cannot connect to the test database \S+ at 127\.0\.0\.1:\d+: role "\S+" does not exist\. .*Change TEST_DB_USER/,
    );
    expect(lines[1]).toBe('If the test database was never set up: pgtwin setup creates it and its role.');

    const debug = await runCli(['reset', '--debug'], { env });
    expect(debug.code).toBe(4);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  test('an unreachable production is a database error (exit 4) naming the variables to change', async () => {
    const port = String(await closedPort());
    const result = await runCli(['dump', '--out', emptyDir(), '--json'], {
      env: { ...env, DB_PORT: port, DB_PASS: 'prod-Secret-99' },
    });
    expect(result.code).toBe(4);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^pgtwin dump: Cannot connect to the production database .*Start PostgreSQL there or change DB_HOST \/ DB_PORT\.$/,
      ),
    ]);
    expect(result.json()).toMatchObject({
      ok: false,
      exitCode: 4,
      error: { name: 'ConnectionError', code: 'PGTWIN_CONNECTION' },
    });
    expect(result.stdout + result.stderr).not.toContain('prod-Secret-99');
  });

  test('a missing --config file is a configuration error (exit 2)', async () => {
    const result = await runCli(['diff', '--config', 'nope.config.ts'], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^pgtwin diff: The config file .*nope\.config\.ts does not exist/);
  });
});

afterAll(() => undefined);
