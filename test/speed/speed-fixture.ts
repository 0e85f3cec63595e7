import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import {
  resolveConfig,
  type PgtwinConfig,
  type ResolveConfigOptions,
  type ResolvedConfig,
} from '../../src/config/index.js';
export { readSources, twinBuilder } from '../../fixtures/twin-steps.js';
import { adminQuery, databaseUrl, SERVER_URL, uniqueName } from '../helpers/databases.js';
import { DROP_HOOK_TIMEOUT_MS } from '../helpers/timeouts.js';

const server = new URL(SERVER_URL);
const SERVER = {
  host: server.hostname,
  port: Number(server.port || 5432),
  user: decodeURIComponent(server.username),
};

/**
 * Databases created by pgtwin under names the test does not choose (templates, builds): everything on the
 * server whose name starts with one of `prefixes`, dropped after the file, templates unflagged first.
 */
export function dropAfterAll(names: () => Iterable<string>): void {
  afterAll(async () => {
    for (const name of names()) {
      await adminQuery(`ALTER DATABASE "${name}" WITH IS_TEMPLATE false`).catch(() => undefined);
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    }
  }, DROP_HOOK_TIMEOUT_MS);
}

/** A tiny contentgen production, a project root holding a seed file, and a config pointing at both. */
export async function speedProject(label: string): Promise<{
  config: ResolvedConfig;
  production: string;
  rootDir: string;
  /** The seed file, absolute. */
  seedFile: string;
  reconfigure: (overrides: PgtwinConfig) => Promise<ResolvedConfig>;
  /** What {@link reconfigure} resolves, for `runGlobalSetup`. */
  options: (overrides: PgtwinConfig) => ResolveConfigOptions;
}> {
  const production = uniqueName(`${label}_prod`);
  await adminQuery(`CREATE DATABASE "${production}"`);
  await createContentgenProduction(databaseUrl(production), { data: FIXTURE_SIZES.tiny });
  const rootDir = await mkdtemp(path.join(tmpdir(), 'pgtwin-speed-'));
  // Templates are content-addressed: the seed file's name (part of the configuration) is the project's own,
  // so each test file's twin differs from the others' and so does its template, which the file drops.
  const seeds = `seed_${production}.json`;
  const seedFile = path.join(rootDir, seeds);
  await copyFile(new URL('../seed/data/clients.json', import.meta.url), seedFile);
  const options = (overrides: PgtwinConfig): ResolveConfigOptions => ({
    rootDir,
    configFile: false,
    env: {},
    seeds,
    ...overrides,
    production: { ...SERVER, database: production },
    test: { ...SERVER, database: uniqueName(`${label}_test`), ...overrides.test },
    admin: { ...SERVER, database: 'postgres' },
    ...(overrides.admin && { admin: overrides.admin }),
  });
  const reconfigure = (overrides: PgtwinConfig) => resolveConfig(options(overrides));
  return { config: await reconfigure({}), production, rootDir, seedFile, reconfigure, options };
}

/** Runs one query on `database` of the test server. */
export async function queryDatabase<R extends pg.QueryResultRow>(
  database: string,
  sql: string,
): Promise<R[]> {
  return (await adminQuery<R>(sql, [], databaseUrl(database))).rows;
}

/** Whether a database exists, and whether it is flagged as a template. */
export async function databaseState(name: string): Promise<'missing' | 'template' | 'database'> {
  const { rows } = await adminQuery<{ t: boolean }>(
    'SELECT datistemplate AS t FROM pg_database WHERE datname = $1',
    [name],
  );
  if (rows.length === 0) return 'missing';
  return rows[0]!.t ? 'template' : 'database';
}
