import { execFile, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import type { FixtureSize } from '../fixtures/contentgen/index.js';
import type { ResolvedConfig } from '../src/config/index.js';
import type { Runs } from './results.js';

// What every measurement shares: the server, the bench's databases, and small timing helpers.

export const SERVER_URL = process.env.PGTWIN_TEST_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const server = new URL(SERVER_URL);
export const SERVER = {
  host: server.hostname,
  port: Number(server.port || 5432),
  user: decodeURIComponent(server.username),
};

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** bench/, whether this runs bundled (bench/out/run.mjs) or not. */
export const BENCH_DIR = path.basename(HERE) === 'out' ? path.dirname(HERE) : HERE;
export const REPO_ROOT = path.dirname(BENCH_DIR);

/** ≥ 100,000 rows in the mirrored tables (object_models + prompts), both project schemas populated. */
export const SIZE: FixtureSize = {
  objectModels: 20_000,
  prompts: 100_000,
  clients: 40,
  // FIXTURE_SIZES.large has 200, whose budgets overflow numeric(24,10) above 56 projects.
  projects: 50,
  entriesPerProject: 20_000,
  usageRows: 100_000,
  seed: 1,
};
export const MIRRORED = ['public.object_models', 'public.prompts'];
export const RUNS: Runs = { cold: 5, warm: 5, clone: 3, seed: 7, mirror: 3, cli: 5 };

/** The databases the bench creates (all dropped at the end), the project root and the resolved config. */
export interface BenchContext {
  names: { production: string; test: string; dump: string; structure: string; cliTest: string };
  /** Extra databases to drop at the end (worker copies). */
  extra: Set<string>;
  /**
   * Templates the bench used, dropped at the end unless in `kept`: templates are content-addressed, so one
   * built from the same inputs may be another project's cache.
   */
  templates: Set<string>;
  /** pgtwin's templates on the server before the bench started: never dropped by it. */
  kept: ReadonlySet<string>;
  /** A temporary project root holding the seed files. */
  rootDir: string;
  config: ResolvedConfig;
  /** Rows in the mirrored tables of the fixture. */
  mirroredRows: number;
  /** The template the warm measurement left, which clones and seeds are made from. */
  template: string;
  log(line: string): void;
}

export const run = promisify(execFile);

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;

export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const started = performance.now();
  const value = await fn();
  return [performance.now() - started, value];
}

/**
 * Milliseconds of CPU every core of the machine spent busy (user, nice, system, interrupts) since boot: the
 * difference over a measurement counts every process, the servers' backends included.
 */
export function busyCpuMs(): number {
  return cpus().reduce((sum, { times }) => sum + times.user + times.nice + times.sys + times.irq, 0);
}

/** `fn`'s result and the machine's busy CPU milliseconds while it ran ({@link busyCpuMs}). */
export async function withCpu<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const before = busyCpuMs();
  const value = await fn();
  return [busyCpuMs() - before, value];
}

export async function repeat<T>(times: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < times; i++) out.push(await fn());
  return out;
}

export function databaseUrl(database: string): string {
  return Object.assign(new URL(SERVER_URL), { pathname: `/${database}` }).toString();
}

/** admin(sql, params?) on the maintenance database, or admin(url, sql) on another one. */
export async function admin<R extends pg.QueryResultRow = pg.QueryResultRow>(
  first: string,
  second: string | unknown[] = [],
): Promise<R[]> {
  const [url, sql, params] = typeof second === 'string' ? [first, second, []] : [SERVER_URL, first, second];
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Waits (10 s at most) until no autovacuum worker runs: on 2 cores one analysing the tables a step just
 * loaded takes a third of the CPU from whatever is measured next, at random.
 */
export async function autovacuumIdle(): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 100) {
    const [row] = await admin<{ workers: number }>(
      `SELECT count(*)::int AS workers FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`,
    );
    if (row?.workers === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function sh(command: string): Promise<void> {
  await run('bash', ['-o', 'pipefail', '-c', command], { maxBuffer: 64 * 2 ** 20 });
}

/** The pipeline a user would script: a new database `into` (absent), the schema, then the mirrored rows. */
export async function pgDumpPsql(production: string, into: string): Promise<void> {
  await admin(`CREATE DATABASE "${into}"`);
  await sh(`pg_dump ${FROM} --schema-only ${production} | ${PSQL} ${into} >/dev/null`);
  await pgDumpPsqlData(production, into);
}

/** `pg_dump --data-only` of the mirrored tables into `into`, which has their structure. */
export async function pgDumpPsqlData(production: string, into: string): Promise<void> {
  const tables = MIRRORED.map((table) => `-t ${table}`).join(' ');
  await sh(`pg_dump ${FROM} --data-only ${tables} ${production} | ${PSQL} ${into} >/dev/null`);
}

const FROM = `-h ${SERVER.host} -p ${SERVER.port} -U ${SERVER.user}`;
const PSQL = `psql ${FROM} -q -v ON_ERROR_STOP=1`;

/**
 * Runs `script` (the bundled bench) with `args` in a process of its own, for measurements that patch `pg`
 * globally; returns the JSON its last line of output holds.
 */
export async function inChildProcess<T>(script: string, args: string[]): Promise<T> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`bench child ${args.join(' ')} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}
