import type { DatabaseTarget } from '../config/database-target.js';
import { ENV_NAMES } from '../config/env-names.js';
import { MAX_IDENTIFIER_BYTES, type ResolvedConfig } from '../config/resolve-config.js';
import { ConfigError } from '../errors.js';
import { TwinDatabases, type CopyOptions } from './twin-databases.js';

/** One test worker's own copy of the template. */
export interface WorkerDatabase {
  /** The worker id (`VITEST_POOL_ID` / `JEST_WORKER_ID`). */
  readonly id: number;
  readonly target: DatabaseTarget;
  /** `TEST_DB_NAME` and `TEST_DATABASE_URL` (with the password) pointing at the worker's database. */
  readonly env: Readonly<Record<string, string>>;
}

/** Options of {@link workerDatabase} and {@link prepareWorkerDatabases}. */
export type WorkerDatabaseOptions = Pick<CopyOptions, 'strategy'>;

/**
 * The worker id of this process: `VITEST_POOL_ID`, else `JEST_WORKER_ID`, else `1` (one worker).
 *
 * @example
 * currentWorkerId({ VITEST_POOL_ID: '3' }); // 3
 */
export function currentWorkerId(env: Record<string, string | undefined> = process.env): number {
  for (const name of ['VITEST_POOL_ID', 'JEST_WORKER_ID']) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const id = Number(value);
    if (!Number.isInteger(id) || id < 1) {
      throw new ConfigError(
        name,
        `${name} must be a positive whole number (the test runner sets it), got ${JSON.stringify(value)}.`,
      );
    }
    return id;
  }
  return 1;
}

/**
 * The database name of worker `workerId`: `<test database>_w<id>`.
 *
 * @example
 * workerDatabaseName(config, 2); // 'contentgen_test_db_w2'
 */
export function workerDatabaseName(config: ResolvedConfig, workerId: number): string {
  if (!Number.isInteger(workerId) || workerId < 1)
    throw new RangeError(`workerId must be a positive integer, got ${workerId}.`);
  const name = `${config.test.database}_w${workerId}`;
  if (Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
    throw new ConfigError(
      ENV_NAMES.test.database,
      `The test database name "${config.test.database}" is too long for worker copies: "${name}" is ${Buffer.byteLength(name)} bytes, ` +
        `and PostgreSQL keeps ${MAX_IDENTIFIER_BYTES}. Shorten ${ENV_NAMES.test.database} to at most ${MAX_IDENTIFIER_BYTES - 2 - String(workerId).length} bytes.`,
    );
  }
  return name;
}

/** The worker's target and environment, without touching the server (for the worker process itself). */
export function workerTarget(config: ResolvedConfig, workerId: number = currentWorkerId()): WorkerDatabase {
  const target = config.test.withDatabase(workerDatabaseName(config, workerId));
  return {
    id: workerId,
    target,
    env: {
      [ENV_NAMES.test.database]: target.database,
      [ENV_NAMES.test.url]: target.url({ withPassword: true }),
    },
  };
}

/**
 * (Re)creates worker `workerId`'s database as a fresh clone of `template`, stamped `worker`, and returns its
 * target and environment. Workers never share a database, so they never wait on each other's locks.
 *
 * @example
 * const { env } = await workerDatabase(config, lease.template, currentWorkerId());
 * Object.assign(process.env, env);
 */
export async function workerDatabase(
  config: ResolvedConfig,
  template: string,
  workerId: number = currentWorkerId(),
  options: WorkerDatabaseOptions = {},
): Promise<WorkerDatabase> {
  const worker = workerTarget(config, workerId);
  await TwinDatabases.use(config, (databases) =>
    databases.copy(template, worker.target.database, { kind: 'worker', strategy: options.strategy }),
  );
  return worker;
}

/**
 * Creates the databases of workers `1..count` in parallel (one connection each), at the start of a run.
 *
 * @example
 * const workers = await prepareWorkerDatabases(config, lease.template, 4);
 */
export async function prepareWorkerDatabases(
  config: ResolvedConfig,
  template: string,
  count: number,
  options: WorkerDatabaseOptions = {},
): Promise<WorkerDatabase[]> {
  const ids = Array.from({ length: count }, (_, index) => index + 1);
  return Promise.all(ids.map((id) => workerDatabase(config, template, id, options)));
}
