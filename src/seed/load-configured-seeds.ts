import { existsSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { DEFAULT_SEEDS } from '../config/pgtwin-config.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { ConfigError, SeedError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { checkSeedData, type SeedCheck } from './check-seed-data.js';
import type { UserFactories } from './factory-registry.js';
import { loadSeedData, type SeedResult } from './load-seed-data.js';
import { loadUserFactories } from './load-user-factories.js';
import { readSeedDocuments } from './plan-from-database.js';

/**
 * Loads the configured seeds (`seeds`, with the `factories` module) into the test database `client` is
 * connected to. The default seed file may be absent (a project without seeds); a configured one may not.
 * The caller has passed the production guard.
 */
export async function loadConfiguredSeeds(
  client: pg.ClientBase,
  config: ResolvedConfig,
  options: { seeds?: string | readonly string[]; logger?: Logger; inTransaction?: boolean } = {},
): Promise<SeedResult | undefined> {
  const configured = await configuredSeeds(config, options.seeds);
  if (!configured) return undefined;
  return loadSeedData(client, configured.seeds, {
    factories: configured.factories,
    projectSchemas: config.projectSchemas,
    rootDir: config.rootDir,
    limits: config.seedLimits,
    logger: options.logger,
    inTransaction: options.inTransaction,
  });
}

/**
 * Plans the configured seeds against production's structure without writing anything (see
 * {@link checkSeedData}); `where` references into the mirrored tables are looked up, since production holds
 * the same rows. `undefined` when the project has no seeds.
 */
export async function checkConfiguredSeeds(
  production: pg.ClientBase,
  config: ResolvedConfig,
): Promise<SeedCheck | undefined> {
  const configured = await configuredSeeds(config);
  if (!configured) return undefined;
  return checkSeedData(production, configured.seeds, {
    factories: configured.factories,
    projectSchemas: config.projectSchemas,
    rootDir: config.rootDir,
    limits: config.seedLimits,
    sharedTables: config.mirror.full,
  });
}

/**
 * Reads and parses the configured seed files without a database, so a missing or malformed one stops a run
 * before any clone or copy: a {@link ConfigError} (CLI exit 2) for `seeds`, whose message names the file
 * (and, for a malformed one, the line and JSON path). Tables, columns and references are checked when the
 * seeds are planned against a database. Returns `config`, so it chains after `resolveConfig`.
 */
export async function checkSeedFiles(config: ResolvedConfig): Promise<ResolvedConfig> {
  const seeds = configuredSeedFiles(config);
  if (seeds.length === 0) return config;
  try {
    // Relative, so the message names the file as the configuration does.
    const relative = seeds.map((file) => path.relative(config.rootDir, file) || file);
    await readSeedDocuments(relative, config.rootDir, config.seedLimits);
    return config;
  } catch (error) {
    if (!(error instanceof SeedError)) throw error;
    const origin = config.sources.seeds === 'default' ? 'the default' : `from ${config.sources.seeds}`;
    throw new ConfigError('seeds', `${error.message} (seeds ${origin})`, { cause: error });
  }
}

function configuredSeedFiles(config: ResolvedConfig): readonly string[] {
  if (config.sources.seeds !== 'default') return config.seeds;
  return config.seeds.filter(
    (file) => file !== path.resolve(config.rootDir, DEFAULT_SEEDS) || existsSync(file),
  );
}

/** The seed files to load (the default one only when it exists) and the user's factories. */
async function configuredSeeds(
  config: ResolvedConfig,
  given?: string | readonly string[],
): Promise<{ seeds: string | readonly string[]; factories?: UserFactories } | undefined> {
  const seeds = given ?? configuredSeedFiles(config);
  if (seeds.length === 0) return undefined;
  const factories = config.factories ? await loadUserFactories(config.factories, config.rootDir) : undefined;
  return { seeds, factories };
}
