import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SERVER } from '../helpers/config.js';
import { adminQuery, databaseUrl, SERVER_URL } from '../helpers/databases.js';
import { CHILD_RUN_TIMEOUT_MS } from '../helpers/timeouts.js';

/** The built command, as `npx pgtwin` runs it. */
export const CLI = path.resolve(import.meta.dirname, '../../dist/cli.js');

/** The outcome of one `pgtwin` process. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as the one JSON document of `--json`. */
  json<T = Record<string, unknown>>(): T;
}

/** A password the commands' output must never show. */
export const TEST_PASSWORD = 'twin-Secret-417';

/** An empty working directory: no config file, no .env. */
export function emptyDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'pgtwin-cli-'));
}

/**
 * Environment of a `pgtwin` process: the suite's server for production, test and admin, the provider
 * `server`, `settings` on top, nothing inherited from this run's own pgtwin, Vitest or CI settings.
 */
export function cliEnv(settings: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(VITEST|TEST_|DB_|DATABASE_URL|PGTWIN_|JEST_|CI$|NO_COLOR$)/.test(name))
      env[name] = value;
  }
  return {
    ...env,
    DB_HOST: SERVER.host,
    DB_PORT: String(SERVER.port),
    DB_USER: SERVER.user,
    DB_PASS: decodeURIComponent(new URL(SERVER_URL).password),
    TEST_DB_HOST: SERVER.host,
    TEST_DB_PORT: String(SERVER.port),
    TEST_DB_PASS: TEST_PASSWORD,
    TEST_DB_ADMIN_URL: SERVER_URL,
    PGTWIN_PROVIDER: 'server',
    ...settings,
  };
}

/** Runs `node dist/cli.js ...args`, or with `asCommand` `dist/cli.js ...args` through its `#!` line, as `npx pgtwin` does. */
export function runCli(
  args: string[],
  options: { env: Record<string, string>; cwd?: string; asCommand?: boolean },
): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first.`);
  return new Promise((resolve) => {
    execFile(
      options.asCommand ? CLI : process.execPath,
      options.asCommand ? args : [CLI, ...args],
      { cwd: options.cwd ?? emptyDir(), env: options.env, timeout: CHILD_RUN_TIMEOUT_MS },
      (error, stdout, stderr) => {
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
          stdout,
          stderr,
          json: <T>() => JSON.parse(stdout) as T,
        });
      },
    );
  });
}

/** What a refused command must leave untouched: production's structure, rows and comment, and the role it would create. */
export async function productionState(production: string, role: string) {
  const { rows } = await adminQuery<Record<string, string | boolean | null>>(
    `SELECT (SELECT count(*) FROM public.prompts)::text AS prompts,
            (SELECT count(*) FROM public.object_models)::text AS object_models,
            (SELECT md5(string_agg(c, ',' ORDER BY c)) FROM (
               SELECT table_schema || '.' || table_name || '.' || column_name || ':' || data_type AS c
                 FROM information_schema.columns
                WHERE table_schema NOT IN ('pg_catalog', 'information_schema')) AS columns) AS columns,
            (SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()) AS comment,
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS role`,
    [role],
    databaseUrl(production),
  );
  return rows[0]!;
}
