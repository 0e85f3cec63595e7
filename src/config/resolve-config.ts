import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { didYouMean } from '../util/closest-name.js';
import {
  DatabaseTarget,
  SSL_MODES,
  type SslMode,
  type TargetSettings,
  type TlsSettings,
} from './database-target.js';
import { ENV_NAMES } from './env-names.js';
import { loadConfigFile } from './load-config-file.js';
import { maskUrl } from './mask-secrets.js';
import {
  DEFAULT_ADMIN_DATABASE,
  DEFAULT_ENV_FILES,
  DEFAULT_MIRROR_FULL,
  DEFAULT_MIRROR_STRUCTURE_ONLY,
  DEFAULT_PRODUCTION,
  DEFAULT_PROJECT_SCHEMAS,
  DEFAULT_SEEDS,
  DEFAULT_SEED_MAX_COUNT,
  DEFAULT_SEED_MAX_ROWS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_TEST,
  DEFAULT_PROVIDER,
  DEFAULT_EMBEDDED_CACHE_DIR,
  DEFAULT_EMBEDDED_DATA_DIR,
  DEFAULT_CONTAINER_IMAGE,
  DEFAULT_SSL_MODE,
  DEFAULT_DEBUG,
  DEFAULT_READY_COPIES,
  MAX_READY_COPIES,
  DEFAULT_REBUILD,
  type ProviderName,
  type DatabaseConfig,
  type PgtwinConfig,
  type ResolveConfigOptions,
} from './pgtwin-config.js';
import { readEnvironment, type EnvLookup } from './read-environment.js';
import { unknownVariableWarnings } from './unknown-variables.js';

/** The configuration after every layer is applied: complete, validated and frozen. */
export interface ResolvedConfig {
  readonly rootDir: string;
  /** The config file read, if any. */
  readonly configFile: string | undefined;
  readonly production: DatabaseTarget;
  readonly test: DatabaseTarget;
  readonly admin: DatabaseTarget;
  readonly mirror: { readonly full: readonly string[]; readonly structureOnly: readonly string[] };
  readonly projectSchemas: string;
  /** Seed paths, absolute. */
  readonly seeds: readonly string[];
  readonly seedLimits: { readonly maxCount: number; readonly maxRows: number };
  readonly isolation: { readonly maxConnections: number; readonly readyCopies: number };
  /** Factories module, absolute. */
  readonly factories: string | undefined;
  readonly schema: { readonly scripts: string | undefined };
  /** Dump directory to build from instead of production, absolute. */
  readonly source: { readonly dump: string | undefined };
  /** `PGTWIN_ALLOW_UNMARKED=1`: destructive operations may touch a database without pgtwin's marker. */
  readonly allowUnmarked: boolean;
  /** Debug lines and whole errors (`PGTWIN_DEBUG=1`). */
  readonly debug: boolean;
  /** Build the template again although its fingerprint is unchanged (`PGTWIN_REBUILD=1`). */
  readonly rebuild: boolean;
  readonly provider: ProviderName;
  readonly embedded: {
    readonly dataDir: string;
    readonly port: number;
    readonly persistent: boolean;
    readonly cacheDir: string;
  };
  readonly container: { readonly image: string };
  /** Where each value came from, e.g. `{ 'test.port': 'TEST_DB_PORT (.env)' }`, for `pgtwin doctor`. */
  readonly sources: Readonly<Record<string, string>>;
  /**
   * Mistakes that do not stop a run but likely change it, each a sentence with the fix: variables that look
   * meant for pgtwin but are not read (`TEST_DB_NMAE`: did you mean `TEST_DB_NAME`?). The CLI and the global
   * setup print them; `pgtwin doctor` shows them as a warning.
   */
  readonly warnings: readonly string[];
}

type Check =
  | 'string'
  | 'port'
  | 'portOrZero'
  | 'positiveInteger'
  | 'readyCopies'
  | 'boolean'
  | 'provider'
  | 'url'
  | 'ssl'
  | 'strings'
  | 'stringOrStrings'
  | { [key: string]: Check };

const DATABASE_SHAPE: Check = {
  url: 'url',
  host: 'string',
  port: 'port',
  database: 'string',
  user: 'string',
  password: 'string',
  options: 'string',
  ssl: 'ssl',
};

const CONFIG_SHAPE: { [key: string]: Check } = {
  production: DATABASE_SHAPE,
  test: DATABASE_SHAPE,
  admin: DATABASE_SHAPE,
  mirror: { full: 'strings', structureOnly: 'strings' },
  projectSchemas: 'string',
  seeds: 'stringOrStrings',
  seedLimits: { maxCount: 'positiveInteger', maxRows: 'positiveInteger' },
  isolation: { maxConnections: 'positiveInteger', readyCopies: 'readyCopies' },
  factories: 'string',
  schema: { scripts: 'string' },
  source: { dump: 'string' },
  provider: 'provider',
  embedded: { dataDir: 'string', port: 'portOrZero', persistent: 'boolean', cacheDir: 'string' },
  container: { image: 'string' },
  debug: 'boolean',
  rebuild: 'boolean',
};

const PROVIDERS: readonly ProviderName[] = ['auto', 'server', 'embedded', 'container'];

const RESOLVER_OPTIONS = new Set(['rootDir', 'configFile', 'envFiles', 'env']);

type Field =
  | 'host'
  | 'port'
  | 'database'
  | 'user'
  | 'password'
  | 'options'
  | 'sslmode'
  | 'sslrootcert'
  | 'sslcert'
  | 'sslkey';
const FIELDS: readonly Field[] = [
  'host',
  'port',
  'database',
  'user',
  'password',
  'options',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
];

/**
 * Resolves pgtwin's configuration from, highest first: explicit options, the config file
 * (`pgtwin.config.{ts,mts,js,mjs,json}`), the environment (real variables, then `.env` files), defaults.
 * Every value is validated at once; a bad one throws a {@link ConfigError} naming the key or variable.
 * The CLI and both presets call this one function.
 *
 * @example
 * ```ts
 * const config = await resolveConfig({ test: { database: 'myapp_test' } });
 * config.test.url(); // 'postgres://test_runner_user:*****@localhost:5432/myapp_test'
 * ```
 */
export async function resolveConfig(options: ResolveConfigOptions = {}): Promise<ResolvedConfig> {
  const rootDir = path.resolve(options.rootDir ?? process.cwd());
  const explicit = withoutResolverOptions(options);
  validateShape(explicit, CONFIG_SHAPE, '', 'options');

  const file = await loadConfigFile(rootDir, options.configFile);
  const fileConfig = file?.config ?? {};
  if (file) validateShape(fileConfig, CONFIG_SHAPE, '', `config file ${file.file}`);

  const env = readEnvironment({
    rootDir,
    env: options.env ?? process.env,
    envFiles: options.envFiles ?? DEFAULT_ENV_FILES,
    explicitFiles: options.envFiles !== undefined,
  });

  const sources: Record<string, string> = {};
  const layers: Layer[] = [
    { name: 'options', config: explicit },
    { name: file ? path.relative(rootDir, file.file) || file.file : 'config file', config: fileConfig },
  ];

  const noTls: TlsSettings = { mode: DEFAULT_SSL_MODE };
  const production = resolveDatabase(
    'production',
    layers,
    env,
    rootDir,
    { ...DEFAULT_PRODUCTION, ssl: noTls },
    sources,
  );
  const test = resolveDatabase('test', layers, env, rootDir, { ...DEFAULT_TEST, ssl: noTls }, sources);
  const admin = resolveDatabase(
    'admin',
    layers,
    env,
    rootDir,
    // Provisioning happens on the test server (with its TLS settings), as the production user unless told
    // otherwise; those fields keep the setting and source they came from, so advice names the right one.
    {
      host: test.host,
      port: test.port,
      database: DEFAULT_ADMIN_DATABASE,
      user: production.user,
      password: production.password,
      ssl: { ...test.ssl },
      inherited: {
        host: { setting: test.settings.host!, source: sources['test.host']! },
        port: { setting: test.settings.port!, source: sources['test.port']! },
        user: { setting: production.settings.user!, source: sources['production.user']! },
        password: { setting: production.settings.password!, source: sources['production.password']! },
      },
    },
    sources,
  );

  const pick = <K extends keyof PgtwinConfig>(key: K): PgtwinConfig[K] | undefined => {
    for (const layer of layers) {
      if (layer.config[key] !== undefined) {
        sources[key] = layer.name;
        return layer.config[key];
      }
    }
    sources[key] = 'default';
    return undefined;
  };
  const pickNested = <T>(
    key: 'mirror' | 'schema' | 'source' | 'embedded' | 'container' | 'seedLimits' | 'isolation',
    field: string,
    fallback: T,
  ): T => {
    for (const layer of layers) {
      const value = (layer.config[key] as Record<string, unknown> | undefined)?.[field];
      if (value !== undefined) {
        sources[`${key}.${field}`] = layer.name;
        return value as T;
      }
    }
    sources[`${key}.${field}`] = 'default';
    return fallback;
  };

  const full = pickNested('mirror', 'full', DEFAULT_MIRROR_FULL).map((t) => qualifyTable(t, 'mirror.full'));
  const structureOnly = pickNested('mirror', 'structureOnly', DEFAULT_MIRROR_STRUCTURE_ONLY).map((t) =>
    qualifyTable(t, 'mirror.structureOnly'),
  );
  const both = full.filter((table) => structureOnly.includes(table));
  if (both.length > 0) {
    throw new ConfigError(
      'mirror',
      `${both.join(', ')} is listed in both mirror.full and mirror.structureOnly. A table either mirrors production's data or holds only test data: keep it in one list.`,
    );
  }

  const projectSchemas = pick('projectSchemas') ?? DEFAULT_PROJECT_SCHEMAS;
  if (!/^[a-z_][a-z0-9_$*]*$/i.test(projectSchemas)) {
    throw new ConfigError(
      'projectSchemas',
      `projectSchemas must be a schema name pattern such as "project_*" (letters, digits, _ and * only), got "${projectSchemas}".`,
    );
  }
  const seeds = pick('seeds') ?? DEFAULT_SEEDS;
  const seedLimits = {
    maxCount: pickNested('seedLimits', 'maxCount', DEFAULT_SEED_MAX_COUNT),
    maxRows: pickNested('seedLimits', 'maxRows', DEFAULT_SEED_MAX_ROWS),
  };
  const isolation = {
    maxConnections: pickNested('isolation', 'maxConnections', DEFAULT_MAX_CONNECTIONS),
    readyCopies: pickNested('isolation', 'readyCopies', DEFAULT_READY_COPIES),
  };
  const factories = pick('factories');
  const scripts = pickNested<string | undefined>('schema', 'scripts', undefined);
  const dump = pickNested<string | undefined>('source', 'dump', undefined);

  const unmarked = readFlag(env, ENV_NAMES.allowUnmarked);
  if (unmarked) sources[ENV_NAMES.allowUnmarked] = unmarked.source;
  const allowUnmarked = unmarked?.value ?? false;
  const flag = (key: 'debug' | 'rebuild', fallback: boolean): boolean => {
    const picked = pick(key);
    if (picked !== undefined) return picked;
    const found = readFlag(env, ENV_NAMES[key]);
    if (!found) return fallback;
    sources[key] = `${ENV_NAMES[key]} (${found.source})`;
    return found.value;
  };
  const debug = flag('debug', DEFAULT_DEBUG);
  const rebuild = flag('rebuild', DEFAULT_REBUILD);
  let provider = pick('provider');
  const envProvider = env(ENV_NAMES.provider);
  if (provider === undefined && envProvider) {
    if (!PROVIDERS.includes(envProvider.value as ProviderName)) {
      throw new ConfigError(
        ENV_NAMES.provider,
        `${ENV_NAMES.provider} (from ${envProvider.source}) must be one of ${PROVIDERS.join(', ')}, got "${envProvider.value}".`,
      );
    }
    provider = envProvider.value as ProviderName;
    sources.provider = `${ENV_NAMES.provider} (${envProvider.source})`;
  }
  const embedded = {
    dataDir: path.resolve(
      rootDir,
      pickNested(
        'embedded',
        'dataDir',
        envPath(env, ENV_NAMES.embeddedDataDir, sources) ?? DEFAULT_EMBEDDED_DATA_DIR,
      ),
    ),
    port: pickNested('embedded', 'port', 0),
    persistent: pickNested('embedded', 'persistent', false),
    cacheDir: path.resolve(
      rootDir,
      pickNested(
        'embedded',
        'cacheDir',
        envPath(env, ENV_NAMES.embeddedCacheDir, sources) ?? DEFAULT_EMBEDDED_CACHE_DIR,
      ),
    ),
  };

  return deepFreeze({
    rootDir,
    configFile: file?.file,
    production,
    test,
    admin,
    mirror: { full, structureOnly },
    projectSchemas,
    seeds: (Array.isArray(seeds) ? seeds : [seeds]).map((seed) => path.resolve(rootDir, seed)),
    seedLimits,
    isolation,
    factories: factories === undefined ? undefined : path.resolve(rootDir, factories),
    schema: { scripts: scripts === undefined ? undefined : path.resolve(rootDir, scripts) },
    source: { dump: dump === undefined ? undefined : path.resolve(rootDir, dump) },
    allowUnmarked,
    debug,
    rebuild,
    provider: provider ?? DEFAULT_PROVIDER,
    embedded,
    container: { image: pickNested('container', 'image', DEFAULT_CONTAINER_IMAGE) },
    sources,
    warnings: unknownVariableWarnings(env.layers),
  });
}

function envPath(env: EnvLookup, name: string, sources: Record<string, string>): string | undefined {
  const found = env(name);
  if (found) sources[name] = found.source;
  return found?.value;
}

/** A 1/0 variable and where it came from; `undefined` when it is not set. */
function readFlag(env: EnvLookup, name: string): { value: boolean; source: string } | undefined {
  const found = env(name);
  if (!found) return undefined;
  const value = found.value.trim().toLowerCase();
  if (['1', 'true', 'yes'].includes(value)) return { value: true, source: found.source };
  if (['0', 'false', 'no'].includes(value)) return { value: false, source: found.source };
  throw new ConfigError(name, `${name} (from ${found.source}) must be 1 or 0, got "${found.value}".`);
}

interface Layer {
  name: string;
  config: PgtwinConfig;
}

/** What one layer says about a target: each field's value, where it came from, and the key that set it. */
interface Contribution {
  values: Partial<Record<Field, string | number>>;
  sources: Partial<Record<Field, string>>;
  keys: Partial<Record<Field, string>>;
}

/** The `sources` / doctor key of each field under its target, e.g. `production.ssl.mode`. */
const FIELD_KEYS: Record<Field, string> = {
  host: 'host',
  port: 'port',
  database: 'database',
  user: 'user',
  password: 'password',
  options: 'options',
  sslmode: 'ssl.mode',
  sslrootcert: 'ssl.rootCert',
  sslcert: 'ssl.cert',
  sslkey: 'ssl.key',
};

/** Fields recorded in `sources` even when nothing set them. */
const ALWAYS_RECORDED: readonly Field[] = ['host', 'port', 'database', 'user', 'password', 'sslmode'];

/** PostgreSQL cuts identifiers (database and role names) at this many bytes. */
export const MAX_IDENTIFIER_BYTES = 63;

type TargetDefaults = {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  ssl: TlsSettings;
  /** Fields defaulting to another target's, with the setting and source that gave them there. */
  inherited?: Partial<Record<'host' | 'port' | 'user' | 'password', { setting: string; source: string }>>;
};

/**
 * One target from every layer. Layers, highest first: explicit options, the config file, the real
 * environment, each `.env` file, then defaults. Within a layer its discrete fields win over the parts of its
 * own URL; across layers each field comes from the highest layer that sets it, through its URL or directly, so
 * a lower layer never overrides any part a higher layer set (a real DATABASE_URL's host beats `.env`'s DB_HOST).
 * `PGSSLMODE` is below every layer's own sslmode, as in libpq.
 */
function resolveDatabase(
  which: 'production' | 'test' | 'admin',
  layers: Layer[],
  env: EnvLookup,
  rootDir: string,
  defaults: TargetDefaults,
  sources: Record<string, string>,
): DatabaseTarget {
  const contributions: Contribution[] = [];
  for (const layer of layers) {
    const config: DatabaseConfig | undefined = layer.config[which];
    if (!config) continue;
    const contribution: Contribution = { values: {}, sources: {}, keys: {} };
    const put = (values: Partial<Record<Field, string | number>>, key: string) => {
      for (const [field, value] of Object.entries(values) as [Field, string | number][]) {
        contribution.values[field] = value;
        contribution.sources[field] = layer.name;
        contribution.keys[field] = key;
      }
    };
    if (config.url) put(parseDatabaseUrl(config.url, `${which}.url`, layer.name), `${which}.url`);
    for (const field of ['host', 'port', 'database', 'user', 'password', 'options'] as const) {
      if (config[field] !== undefined) put({ [field]: config[field] }, `${which}.${field}`);
    }
    if (config.ssl !== undefined) put(sslFields(config.ssl), `${which}.ssl`);
    contributions.push(contribution);
  }

  const names: Partial<Record<'url' | Field, string>> = ENV_NAMES[which];
  for (const layer of env.layers) {
    const contribution: Contribution = { values: {}, sources: {}, keys: {} };
    const url = names.url ? layer.get(names.url) : undefined;
    if (url !== undefined) {
      for (const [field, value] of Object.entries(parseDatabaseUrl(url, names.url!, layer.source))) {
        contribution.values[field as Field] = value;
        contribution.sources[field as Field] = `${names.url} (${layer.source})`;
        contribution.keys[field as Field] = names.url!;
      }
    }
    for (const field of FIELDS) {
      const name = names[field];
      const value = name ? layer.get(name) : undefined;
      if (!name || value === undefined) continue;
      contribution.values[field] = field === 'port' ? parsePort(value, name, layer.source) : value;
      contribution.sources[field] = `${name} (${layer.source})`;
      contribution.keys[field] = name;
    }
    contributions.push(contribution);
  }

  const sslMode = env(ENV_NAMES.sslMode);
  if (sslMode) {
    contributions.push({
      values: { sslmode: parseSslMode(sslMode.value, ENV_NAMES.sslMode, sslMode.source) },
      sources: { sslmode: `${ENV_NAMES.sslMode} (${sslMode.source})` },
      keys: { sslmode: ENV_NAMES.sslMode },
    });
  }

  const fallback: Record<Field, string | number | undefined> = {
    host: defaults.host,
    port: defaults.port,
    database: defaults.database,
    user: defaults.user,
    password: defaults.password,
    options: undefined,
    sslmode: defaults.ssl.mode,
    sslrootcert: defaults.ssl.rootCert,
    sslcert: defaults.ssl.cert,
    sslkey: defaults.ssl.key,
  };
  const resolved = { ...fallback };
  const keys: Partial<Record<Field, string>> = {};
  const settings: TargetSettings = {};
  for (const field of FIELDS) {
    const from = contributions.find((contribution) => contribution.values[field] !== undefined);
    const key = `${which}.${FIELD_KEYS[field]}`;
    const inherited = defaults.inherited?.[field as keyof NonNullable<TargetDefaults['inherited']>];
    if (from) {
      resolved[field] = from.values[field];
      sources[key] = from.sources[field]!;
      keys[field] = from.keys[field];
    } else if (inherited) {
      sources[key] = inherited.source;
    } else if (ALWAYS_RECORDED.includes(field) || fallback[field] !== undefined) {
      sources[key] = 'default';
    }
    if (
      field === 'host' ||
      field === 'port' ||
      field === 'database' ||
      field === 'user' ||
      field === 'password'
    ) {
      settings[field] = from
        ? settingName(from.keys[field]!, from.sources[field]!)
        : (inherited?.setting ?? names[field] ?? names.url ?? key);
    }
  }

  for (const field of ['database', 'user'] as const) {
    checkIdentifierLength(
      String(resolved[field]),
      keys[field] ?? `${which}.${field}`,
      sources[`${which}.${field}`]!,
    );
  }
  const ssl: TlsSettings = { mode: resolved.sslmode as SslMode };
  for (const [field, prop] of [
    ['sslrootcert', 'rootCert'],
    ['sslcert', 'cert'],
    ['sslkey', 'key'],
  ] as const) {
    const file = resolved[field];
    if (file === undefined || file === '') continue;
    const full = path.resolve(rootDir, String(file));
    const key = keys[field] ?? `${which}.ssl.${prop}`;
    if (!existsSync(full)) {
      throw new ConfigError(
        key,
        `${origin(key, sources[`${which}.${FIELD_KEYS[field]}`]!)} names the TLS file ${full} (${field}), which does not exist. Fix the path.`,
      );
    }
    ssl[prop] = full;
  }

  return new DatabaseTarget({
    host: String(resolved.host),
    port: Number(resolved.port),
    database: String(resolved.database),
    user: String(resolved.user),
    password: String(resolved.password),
    ssl,
    ...(resolved.options !== undefined ? { options: String(resolved.options) } : {}),
    settings,
  });
}

/** How a message names a setting: the variable (`TEST_DB_PORT`), or the key and the layer (`test.port in pgtwin.config.ts`). */
function settingName(key: string, source: string): string {
  return source === key || source.startsWith(`${key} (`) ? key : `${key} in ${source}`;
}

/** `TEST_DB_NAME (from .env)` from the key and its recorded source `TEST_DB_NAME (.env)`. */
function origin(key: string, source: string): string {
  const recorded = /^(\S+) \((.*)\)$/.exec(source);
  if (recorded && recorded[1] === key) return `${key} (from ${recorded[2]})`;
  return `${key} (from ${source})`;
}

/** A database or role name PostgreSQL would silently cut to 63 bytes is refused. */
function checkIdentifierLength(name: string, key: string, source: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes <= MAX_IDENTIFIER_BYTES) return;
  const cut = Buffer.from(name, 'utf8')
    .subarray(0, MAX_IDENTIFIER_BYTES)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
  throw new ConfigError(
    key,
    `${origin(key, source)} is ${bytes} bytes long ("${name}"); PostgreSQL cuts names at ${MAX_IDENTIFIER_BYTES} bytes, ` +
      `so it would reach "${cut}" instead, which may be another database (production's own name, when a suffix was added to it). ` +
      `Choose a name of at most ${MAX_IDENTIFIER_BYTES} bytes.`,
  );
}

/** The TLS fields a config `ssl` value sets (validated by {@link validateShape} already). */
function sslFields(value: DatabaseConfig['ssl']): Partial<Record<Field, string>> {
  // The option sets TLS as a whole: files it does not name are none ('') rather than a lower layer's.
  const none = { sslrootcert: '', sslcert: '', sslkey: '' };
  if (value === true) return { ...none, sslmode: 'verify-full' };
  if (value === false) return { ...none, sslmode: 'disable' };
  if (typeof value === 'string') return { ...none, sslmode: value };
  if (!value) return {};
  return {
    sslmode: value.mode ?? 'verify-full',
    sslrootcert: value.rootCert ?? '',
    sslcert: value.cert ?? '',
    sslkey: value.key ?? '',
  };
}

function parseSslMode(value: string, key: string, source: string): SslMode {
  if (SSL_MODES.includes(value as SslMode)) return value as SslMode;
  throw new ConfigError(
    key,
    `${key} (from ${source}) must be one of ${SSL_MODES.join(', ')}, got "${value}".`,
  );
}

/**
 * Splits a `postgres://` URL into fields; the message shows the URL with its password masked. Of the query
 * parameters, `sslmode`, `sslrootcert`, `sslcert`, `sslkey` and `options` are read; others are ignored.
 */
export function parseDatabaseUrl(
  value: string,
  key: string,
  source: string,
): Partial<Record<Field, string | number>> {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      key,
      `${key} (from ${source}) is not a valid URL: "${maskUrl(value)}". Expected postgres://user:password@host:5432/database (percent-encode @, : and / in the password).`,
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(
      key,
      `${key} (from ${source}) must start with postgres:// or postgresql://, got "${url.protocol}//". Expected postgres://user:password@host:5432/database.`,
    );
  }
  const fields: Partial<Record<Field, string | number>> = {};
  if (url.hostname) fields.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.port) fields.port = parsePort(url.port, key, source);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database) fields.database = database;
  if (url.username) fields.user = decodeURIComponent(url.username);
  if (url.password) fields.password = decodeURIComponent(url.password);
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode) fields.sslmode = parseSslMode(sslmode, `${key}'s sslmode`, source);
  for (const name of ['sslrootcert', 'sslcert', 'sslkey', 'options'] as const) {
    const param = url.searchParams.get(name);
    if (param) fields[name] = param;
  }
  return fields;
}

function parsePort(value: string, key: string, source: string): number {
  const port = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(
      key,
      `${key} (from ${source}) must be a port number from 1 to 65535, got "${value}".`,
    );
  }
  return port;
}

function qualifyTable(name: string, key: string): string {
  if (typeof name !== 'string' || !/^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?$/i.test(name)) {
    throw new ConfigError(
      key,
      `${key} holds "${String(name)}", which is not a table name. Write schema.table, e.g. public.prompts.`,
    );
  }
  return name.includes('.') ? name : `public.${name}`;
}

function withoutResolverOptions(options: ResolveConfigOptions): PgtwinConfig {
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!RESOLVER_OPTIONS.has(key) && value !== undefined) config[key] = value;
  }
  return config as PgtwinConfig;
}

function validateShape(
  value: unknown,
  shape: { [key: string]: Check },
  prefix: string,
  source: string,
): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(
      prefix || 'config',
      `${prefix || 'The configuration'} in ${source} must be an object.`,
    );
  }
  for (const [key, item] of Object.entries(value)) {
    const keyPath = prefix ? `${prefix}.${key}` : key;
    const check = shape[key];
    if (check === undefined) {
      throw new ConfigError(
        keyPath,
        `Unknown key "${keyPath}" in ${source}${didYouMean(key, Object.keys(shape))}. Known keys: ${Object.keys(shape).join(', ')}.`,
      );
    }
    if (item === undefined) continue;
    const fail = (expected: string): never => {
      const shown = key === 'password' ? 'a value' : JSON.stringify(item);
      throw new ConfigError(keyPath, `${keyPath} in ${source} must be ${expected}, got ${shown}.`);
    };
    if (typeof check === 'object') validateShape(item, check, keyPath, source);
    else if (check === 'string' || check === 'url') {
      if (typeof item !== 'string') fail('a string');
      if (check === 'url') parseDatabaseUrl(item as string, keyPath, source);
    } else if (check === 'ssl') {
      validateSsl(item, keyPath, source);
    } else if (check === 'boolean') {
      if (typeof item !== 'boolean') fail('true or false');
    } else if (check === 'provider') {
      if (!PROVIDERS.includes(item as ProviderName))
        fail(
          PROVIDERS.map((p) => `'${p}'`)
            .join(', ')
            .replace(/, ([^,]*)$/, ' or $1'),
        );
    } else if (check === 'portOrZero') {
      if (!Number.isInteger(item) || (item as number) < 0 || (item as number) > 65535)
        fail('0 (any free port) or a port number up to 65535');
    } else if (check === 'positiveInteger') {
      if (!Number.isSafeInteger(item) || (item as number) < 1) fail('a whole number, 1 or more');
    } else if (check === 'readyCopies') {
      if (!Number.isInteger(item) || (item as number) < 0 || (item as number) > MAX_READY_COPIES)
        fail(`a whole number from 0 (no ready copies) to ${MAX_READY_COPIES}`);
    } else if (check === 'port') {
      if (!Number.isInteger(item) || (item as number) < 1 || (item as number) > 65535)
        fail('a port number from 1 to 65535');
    } else if (check === 'strings') {
      if (!Array.isArray(item) || item.some((entry) => typeof entry !== 'string')) fail('a list of strings');
    } else if (
      typeof item !== 'string' &&
      (!Array.isArray(item) || item.some((entry) => typeof entry !== 'string'))
    ) {
      fail('a path or a list of paths');
    }
  }
}

const SSL_KEYS = ['mode', 'rootCert', 'cert', 'key'];

function validateSsl(item: unknown, keyPath: string, source: string): void {
  const modes = SSL_MODES.map((mode) => `'${mode}'`).join(', ');
  if (typeof item === 'boolean') return;
  if (typeof item === 'string') {
    if (!SSL_MODES.includes(item as SslMode))
      throw new ConfigError(
        keyPath,
        `${keyPath} in ${source} must be true, false or one of ${modes}, got ${JSON.stringify(item)}.`,
      );
    return;
  }
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    throw new ConfigError(
      keyPath,
      `${keyPath} in ${source} must be true, false, one of ${modes}, or { mode, rootCert, cert, key }, got ${JSON.stringify(item)}.`,
    );
  }
  for (const [key, value] of Object.entries(item)) {
    if (!SSL_KEYS.includes(key)) {
      throw new ConfigError(
        `${keyPath}.${key}`,
        `Unknown key "${keyPath}.${key}" in ${source}${didYouMean(key, SSL_KEYS)}. Known keys: ${SSL_KEYS.join(', ')}.`,
      );
    }
    if (value === undefined) continue;
    if (key === 'mode' ? !SSL_MODES.includes(value as SslMode) : typeof value !== 'string') {
      throw new ConfigError(
        `${keyPath}.${key}`,
        `${keyPath}.${key} in ${source} must be ${key === 'mode' ? `one of ${modes}` : 'a file path'}, got ${JSON.stringify(value)}.`,
      );
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof DatabaseTarget) && !Object.isFrozen(value)) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

/**
 * The configuration an API object was given: used as it is when already resolved (by {@link resolveConfig}
 * or derived from a resolved one), else resolved from the options.
 */
export function configFrom(config?: ResolvedConfig | ResolveConfigOptions): Promise<ResolvedConfig> {
  const resolved =
    config !== undefined &&
    'sources' in config &&
    'allowUnmarked' in config &&
    typeof config.rootDir === 'string';
  return resolved
    ? Promise.resolve(config as ResolvedConfig)
    : resolveConfig(config as ResolveConfigOptions | undefined);
}
