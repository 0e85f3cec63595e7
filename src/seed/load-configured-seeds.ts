import { existsSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { DEFAULT_SEEDS } from '../config/pgtwin-config.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import type { Logger } from '../util/logger.js';
import { loadSeedData, type SeedResult } from './load-seed-data.js';
import { loadUserFactories } from './load-user-factories.js';

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
  let seeds = options.seeds ?? config.seeds;
  if (options.seeds === undefined && config.sources.seeds === 'default') {
    seeds = config.seeds.filter(
      (file) => file !== path.resolve(config.rootDir, DEFAULT_SEEDS) || existsSync(file),
    );
    if (seeds.length === 0) return undefined;
  }
  const factories = config.factories ? await loadUserFactories(config.factories, config.rootDir) : undefined;
  return loadSeedData(client, seeds, {
    factories,
    projectSchemas: config.projectSchemas,
    rootDir: config.rootDir,
    logger: options.logger,
    inTransaction: options.inTransaction,
  });
}
