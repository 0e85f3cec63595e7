import { inspect } from 'node:util';
import { DatabaseTarget, type TargetInit, type TlsSettings } from '../config/database-target.js';
import { ENV_NAMES } from '../config/env-names.js';
import { MASK } from '../config/mask-secrets.js';
import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { resolveConfig, type ResolvedConfig } from '../config/resolve-config.js';
import { ConfigError } from '../errors.js';
import { currentWorkerId } from '../provision/worker-database.js';

/** Connection fields of one database, as plain data that crosses process boundaries (the password included). */
export type TargetFields = TargetInit;

/**
 * What the global setup hands to every test worker (through `provide` in Vitest, the environment in Jest):
 * where the test database is, and enough to re-resolve the same configuration there. Plain JSON.
 */
export interface TwinHandoff {
  rootDir: string;
  /** The explicit options the run was started with (plugin options, Jest `globals.pgtwin`). */
  options: ResolveConfigOptions;
  test: TargetFields;
  admin: TargetFields;
  /** Isolation settings the workers need (absent from a handoff written by an older pgtwin). */
  isolation?: { maxConnections: number };
  /** The fingerprinted template that fresh copies for tests opting out of isolation are created from. */
  template: string;
  /** The run (`host:pid` of the global setup) whose run lock covers the databases its workers create. */
  run?: string;
  /**
   * The workers' own databases, worker 1 first (`<test>_w1`, ...); empty or absent when the run has one
   * worker, which uses {@link test}.
   */
  workers?: string[];
}

/** The environment variable carrying the {@link TwinHandoff} to Jest workers, as JSON. */
export const HANDOFF_VARIABLE = ENV_NAMES.handoff;

/** What tests receive about the test database (`inject('pgtwin')` in Vitest). */
export interface PgtwinConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** The password; not shown when the object is printed. */
  readonly password: string;
  /** TLS settings, as configured. */
  readonly ssl?: TlsSettings;
  /** PostgreSQL startup options, when configured. */
  readonly options?: string;
  /**
   * `postgres://user:password@host:port/database`, with `sslmode` (and `sslrootcert`, ...) when TLS is set;
   * not shown when the object is printed.
   */
  readonly url: string;
}

export function targetFields(target: DatabaseTarget): TargetFields {
  return target.fields();
}

/** The plain connection details of `target`, for `provide`. */
export function connectionDetails(target: DatabaseTarget): PgtwinConnection {
  return { ...targetFields(target), url: target.url({ withPassword: true }) };
}

/**
 * Hides `password` and `url` of connection details received in a worker from enumeration, `toString`,
 * `toJSON` and `util.inspect`, so printing them (a failed assertion, `console.log`) never shows the password.
 * Mutates `details`, because `inject` hands every caller the same object.
 */
export function maskConnectionDetails(details: PgtwinConnection): PgtwinConnection {
  const masked = new DatabaseTarget(details).url();
  // Configurable and writable: a worker points the same object at its endpoint once that listens.
  for (const key of ['password', 'url'] as const) {
    Object.defineProperty(details, key, {
      value: details[key],
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
  const describe = () => `PgtwinConnection(${masked})`;
  Object.defineProperties(details, {
    toString: { value: () => masked, configurable: true },
    toJSON: {
      value: () => ({ ...details, password: details.password ? MASK : '', url: masked }),
      configurable: true,
    },
    [inspect.custom]: { value: describe, configurable: true },
  });
  return details;
}

/**
 * The variables a worker gets so application code reading its usual configuration reaches `target`:
 * `TEST_DB_HOST`, `TEST_DB_PORT`, `TEST_DB_NAME`, `TEST_DB_USER`, `TEST_DB_PASS` and `TEST_DATABASE_URL`
 * (which carries `sslmode`, `sslrootcert`, `sslcert` and `sslkey` when TLS is set).
 */
export function workerEnvironment(target: TargetFields): Record<string, string> {
  const names = ENV_NAMES.test;
  return {
    [names.host]: target.host,
    [names.port]: String(target.port),
    [names.database]: target.database,
    [names.user]: target.user,
    [names.password]: target.password,
    [names.url]: new DatabaseTarget(target).url({ withPassword: true }),
  };
}

/**
 * The database this worker's tests use: its own copy (`<test>_w<id>`, the id from `VITEST_POOL_ID` /
 * `JEST_WORKER_ID`) when the run prepared one per worker, else the test database.
 *
 * @example
 * workerTestTarget(handoff, { VITEST_POOL_ID: '2' }).database; // 'contentgen_test_db_w2'
 */
export function workerTestTarget(
  handoff: TwinHandoff,
  env: Record<string, string | undefined> = process.env,
): TargetFields {
  const workers = handoff.workers ?? [];
  if (workers.length === 0) return handoff.test;
  const id = currentWorkerId(env);
  const database = workers[id - 1];
  if (database === undefined) {
    throw new ConfigError(
      'workers',
      `Test worker ${id} has no database: pgtwin's global setup prepared ${workers.length} (one per worker the runner was configured with). ` +
        `Set maxWorkers in the runner's config so pgtwin sees the real number of workers.`,
    );
  }
  return { ...handoff.test, database };
}

/** Reads the handoff the global setup left in the environment; a clear error when it is missing. */
export function readHandoff(env: Record<string, string | undefined> = process.env): TwinHandoff {
  const text = env[HANDOFF_VARIABLE];
  if (!text) {
    throw new ConfigError(
      HANDOFF_VARIABLE,
      `${HANDOFF_VARIABLE} is not set, so pgtwin's global setup did not run. Use preset: 'pgtwin' in the Jest config (or its globalSetup), or the pgtwin() plugin in the Vitest config.`,
    );
  }
  return JSON.parse(text) as TwinHandoff;
}

/** The run's configuration, resolved again in a worker, with the test database the global setup prepared. */
export function workerConfig(handoff: TwinHandoff): Promise<ResolvedConfig> {
  return resolveConfig({
    ...handoff.options,
    rootDir: handoff.rootDir,
    test: handoff.test,
    admin: handoff.admin,
  });
}
