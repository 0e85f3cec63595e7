import path from 'node:path';
import { ConfigError } from '../errors.js';
import { didYouMean } from '../util/closest-name.js';
import { DatabaseTarget } from './database-target.js';
import { loadConfigFile } from './load-config-file.js';
import { maskSecrets } from './mask-secrets.js';
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
  DEFAULT_TEST,
  DEFAULT_PROVIDER,
  DEFAULT_EMBEDDED_DATA_DIR,
  DEFAULT_CONTAINER_IMAGE,
  type ProviderName,
  type DatabaseConfig,
  type PgtwinConfig,
  type ResolveConfigOptions,
} from './pgtwin-config.js';
import { readEnvironment, type EnvLookup } from './read-environment.js';

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
  /** Factories module, absolute. */
  readonly factories: string | undefined;
  readonly schema: { readonly scripts: string | undefined };
  /** Dump directory to build from instead of production, absolute. */
  readonly source: { readonly dump: string | undefined };
  /** `PGTWIN_ALLOW_UNMARKED=1`: destructive operations may touch a database without pgtwin's marker. */
  readonly allowUnmarked: boolean;
  readonly provider: ProviderName;
  readonly embedded: { readonly dataDir: string; readonly port: number; readonly persistent: boolean };
  readonly container: { readonly image: string };
  /** Where each value came from, e.g. `{ 'test.port': 'TEST_DB_PORT (.env)' }`, for `pgtwin doctor`. */
  readonly sources: Readonly<Record<string, string>>;
}

type Check =
  | 'string'
  | 'port'
  | 'portOrZero'
  | 'positiveInteger'
  | 'boolean'
  | 'provider'
  | 'url'
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
};

const CONFIG_SHAPE: { [key: string]: Check } = {
  production: DATABASE_SHAPE,
  test: DATABASE_SHAPE,
  admin: DATABASE_SHAPE,
  mirror: { full: 'strings', structureOnly: 'strings' },
  projectSchemas: 'string',
  seeds: 'stringOrStrings',
  seedLimits: { maxCount: 'positiveInteger', maxRows: 'positiveInteger' },
  factories: 'string',
  schema: { scripts: 'string' },
  source: { dump: 'string' },
  provider: 'provider',
  embedded: { dataDir: 'string', port: 'portOrZero', persistent: 'boolean' },
  container: { image: 'string' },
};

const PROVIDERS: readonly ProviderName[] = ['auto', 'server', 'embedded', 'container'];

const RESOLVER_OPTIONS = new Set(['rootDir', 'configFile', 'envFiles', 'env']);

const ENV_NAMES = {
  production: {
    url: 'DATABASE_URL',
    host: 'DB_HOST',
    port: 'DB_PORT',
    database: 'DB_NAME',
    user: 'DB_USER',
    password: 'DB_PASS',
  },
  test: {
    url: 'TEST_DATABASE_URL',
    host: 'TEST_DB_HOST',
    port: 'TEST_DB_PORT',
    database: 'TEST_DB_NAME',
    user: 'TEST_DB_USER',
    password: 'TEST_DB_PASS',
  },
  admin: { url: 'TEST_DB_ADMIN_URL' },
} as const;

type Field = 'host' | 'port' | 'database' | 'user' | 'password';
const FIELDS: readonly Field[] = ['host', 'port', 'database', 'user', 'password'];

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

  const production = resolveDatabase('production', layers, env, DEFAULT_PRODUCTION, sources);
  const test = resolveDatabase('test', layers, env, DEFAULT_TEST, sources);
  const admin = resolveDatabase(
    'admin',
    layers,
    env,
    // Provisioning happens on the test server, as the production user unless told otherwise.
    {
      host: test.host,
      port: test.port,
      database: DEFAULT_ADMIN_DATABASE,
      user: production.user,
      password: production.password,
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
    key: 'mirror' | 'schema' | 'source' | 'embedded' | 'container' | 'seedLimits',
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
  const factories = pick('factories');
  const scripts = pickNested<string | undefined>('schema', 'scripts', undefined);
  const dump = pickNested<string | undefined>('source', 'dump', undefined);

  const allowUnmarked = parseFlag(env, 'PGTWIN_ALLOW_UNMARKED', sources);
  let provider = pick('provider');
  const envProvider = env('PGTWIN_PROVIDER');
  if (provider === undefined && envProvider) {
    if (!PROVIDERS.includes(envProvider.value as ProviderName)) {
      throw new ConfigError(
        'PGTWIN_PROVIDER',
        `PGTWIN_PROVIDER (from ${envProvider.source}) must be one of ${PROVIDERS.join(', ')}, got "${envProvider.value}".`,
      );
    }
    provider = envProvider.value as ProviderName;
    sources.provider = `PGTWIN_PROVIDER (${envProvider.source})`;
  }
  const embedded = {
    dataDir: path.resolve(
      rootDir,
      pickNested(
        'embedded',
        'dataDir',
        envPath(env, 'PGTWIN_EMBEDDED_DATA_DIR', sources) ?? DEFAULT_EMBEDDED_DATA_DIR,
      ),
    ),
    port: pickNested('embedded', 'port', 0),
    persistent: pickNested('embedded', 'persistent', false),
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
    factories: factories === undefined ? undefined : path.resolve(rootDir, factories),
    schema: { scripts: scripts === undefined ? undefined : path.resolve(rootDir, scripts) },
    source: { dump: dump === undefined ? undefined : path.resolve(rootDir, dump) },
    allowUnmarked,
    provider: provider ?? DEFAULT_PROVIDER,
    embedded,
    container: { image: pickNested('container', 'image', DEFAULT_CONTAINER_IMAGE) },
    sources,
  });
}

function envPath(env: EnvLookup, name: string, sources: Record<string, string>): string | undefined {
  const found = env(name);
  if (found) sources[name] = found.source;
  return found?.value;
}

function parseFlag(env: EnvLookup, name: string, sources: Record<string, string>): boolean {
  const found = env(name);
  if (!found) return false;
  sources[name] = found.source;
  const value = found.value.trim().toLowerCase();
  if (['1', 'true', 'yes'].includes(value)) return true;
  if (['0', 'false', 'no'].includes(value)) return false;
  throw new ConfigError(name, `${name} (from ${found.source}) must be 1 or 0, got "${found.value}".`);
}

interface Layer {
  name: string;
  config: PgtwinConfig;
}

function resolveDatabase(
  which: 'production' | 'test' | 'admin',
  layers: Layer[],
  env: EnvLookup,
  defaults: { host: string; port: number; database: string; user: string; password: string },
  sources: Record<string, string>,
): DatabaseTarget {
  // Each layer offers discrete fields over the parts of its URL; the first layer offering a field wins.
  const candidates: { name: string; fields: Partial<Record<Field, string | number>> }[] = [];
  for (const layer of layers) {
    const config: DatabaseConfig | undefined = layer.config[which];
    if (!config) continue;
    const fromUrl = config.url ? parseDatabaseUrl(config.url, `${which}.url`, layer.name) : {};
    candidates.push({ name: layer.name, fields: { ...fromUrl, ...definedFields(config) } });
  }
  const names: Partial<Record<'url' | Field, string>> = ENV_NAMES[which];
  const envUrl = names.url ? env(names.url) : undefined;
  const envFields: Partial<Record<Field, string | number>> = {};
  const envSources: Partial<Record<Field, string>> = {};
  if (envUrl) {
    for (const [field, value] of Object.entries(parseDatabaseUrl(envUrl.value, names.url!, envUrl.source))) {
      envFields[field as Field] = value;
      envSources[field as Field] = `${names.url} (${envUrl.source})`;
    }
  }
  for (const field of FIELDS) {
    const name = names[field];
    const found = name ? env(name) : undefined;
    if (!name || !found) continue;
    envFields[field] = field === 'port' ? parsePort(found.value, name, found.source) : found.value;
    envSources[field] = `${name} (${found.source})`;
  }

  const resolved = { ...defaults };
  for (const field of FIELDS) {
    const layer = candidates.find((candidate) => candidate.fields[field] !== undefined);
    const key = `${which}.${field}`;
    if (layer) {
      (resolved as Record<Field, string | number>)[field] = layer.fields[field]!;
      sources[key] = layer.name;
    } else if (envFields[field] !== undefined) {
      (resolved as Record<Field, string | number>)[field] = envFields[field]!;
      sources[key] = envSources[field]!;
    } else {
      sources[key] = 'default';
    }
  }
  return new DatabaseTarget(resolved);
}

function definedFields(config: DatabaseConfig): Partial<Record<Field, string | number>> {
  const out: Partial<Record<Field, string | number>> = {};
  for (const field of FIELDS) if (config[field] !== undefined) out[field] = config[field];
  return out;
}

/** Splits a `postgres://` URL into fields; the message shows the URL with its password masked. */
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
      `${key} (from ${source}) is not a valid URL: "${maskSecrets(value).replace(/:[^:@/]*@/g, ':*****@')}". Expected postgres://user:password@host:5432/database.`,
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
