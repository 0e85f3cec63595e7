import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { SERVER } from '../helpers/config.js';
import { adminQuery, databaseUrl, SERVER_URL, useScratch } from '../helpers/databases.js';
import { CHILD_RUN_TIMEOUT_MS } from '../helpers/timeouts.js';

export const root = path.resolve(import.meta.dirname, '../..');

/** The Jest binary the preset tests run: this repository's, or another major's (see README, Development). */
export const JEST_BIN = process.env.PGTWIN_E2E_JEST ?? 'node_modules/jest/bin/jest.js';

/** The outcome of one runner process. */
export interface RunResult {
  code: number | null;
  output: string;
  /** `title → status` of every test, from the runner's JSON report (empty when it wrote none). */
  tests: Record<string, string>;
  /** `full name → status` of every test: its describes' titles and its own, joined by spaces. */
  fullNames: Record<string, string>;
}

/** Production built from the contentgen fixture, and the names of a test database and role, all dropped after the file. */
export async function exampleDatabases(prefix: string) {
  const scratch = useScratch(prefix);
  const production = await scratch.database('prod');
  await createContentgenProduction(production.url, { data: FIXTURE_SIZES.tiny });
  const test = scratch.databaseName('test');
  const user = scratch.roleName('user');
  // A run the guard refuses gets a role of its own, to show it did not even create that.
  const refusedUser = scratch.roleName('refused');
  return { production: production.name, test, user, refusedUser };
}

/** Databases on the test server whose name starts with `prefix`. */
export async function databasesNamed(prefix: string): Promise<string[]> {
  const { rows } = await adminQuery<{ name: string }>(
    'SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname',
    [prefix],
  );
  return rows.map((row) => row.name);
}

/** Environment of a runner process: the server of the suite, production and test as given, nothing inherited from this run's own pgtwin or Vitest. */
export function runnerEnv(settings: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(VITEST|TEST_|DB_|DATABASE_URL|PGTWIN_|JEST_)/.test(name))
      env[name] = value;
  }
  const password = decodeURIComponent(new URL(SERVER_URL).password);
  return {
    ...env,
    DB_HOST: SERVER.host,
    DB_PORT: String(SERVER.port),
    DB_USER: SERVER.user,
    DB_PASS: password,
    TEST_DB_HOST: SERVER.host,
    TEST_DB_PORT: String(SERVER.port),
    TEST_DB_PASS: 'twin-secret-9',
    TEST_DB_ADMIN_URL: SERVER_URL,
    ...settings,
  };
}

/** Runs `args` with node in the repository root, collecting the JSON report written to `--outputFile`. */
export function runRunner(args: string[], env: Record<string, string>): Promise<RunResult> {
  if (!existsSync(path.join(root, 'dist/jest/setup.cjs'))) {
    throw new Error('dist/ is missing or stale: run npm run build first.');
  }
  const report = path.join(mkdtempSync(path.join(tmpdir(), 'pgtwin-run-')), 'report.json');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...args, `--outputFile=${report}`],
      { cwd: root, env, timeout: CHILD_RUN_TIMEOUT_MS },
      (error, stdout, stderr) => {
        const tests: Record<string, string> = {};
        const fullNames: Record<string, string> = {};
        if (existsSync(report)) {
          const json = JSON.parse(readFileSync(report, 'utf8')) as {
            testResults: { assertionResults: { title: string; fullName: string; status: string }[] }[];
          };
          for (const file of json.testResults) {
            for (const test of file.assertionResults) {
              tests[test.title] = test.status;
              fullNames[test.fullName] = test.status;
            }
          }
        }
        resolve({
          code: error ? (error.code as number | null) : 0,
          output: `${stdout}\n${stderr}`,
          tests,
          fullNames,
        });
      },
    );
  });
}

/** What a refused run must leave untouched: production's rows, its comment, and the role it would create. */
export async function productionState(production: string, user: string) {
  const counts = await adminQuery<{ total: string }>(
    `SELECT (SELECT count(*) FROM public.clients) + (SELECT count(*) FROM public.projects) +
            (SELECT count(*) FROM public.prompts) AS total`,
    [],
    databaseUrl(production),
  );
  const { rows } = await adminQuery<{ comment: string | null; role: boolean }>(
    `SELECT shobj_description(oid, 'pg_database') AS comment,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role
       FROM pg_database WHERE datname = $1`,
    [production, user],
  );
  return { rows: counts.rows[0]!.total, ...rows[0]! };
}
