import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { resolveConfig, type PgtwinConfig, type ResolvedConfig } from '../../src/config/index.js';
import { connect } from '../../src/connection/connect.js';
import { syncTables } from '../../src/mirror/index.js';
import { pgtwinVersion } from '../../src/mirror/pgtwin-version.js';
import type { FingerprintSources } from '../../src/provision/fingerprint-inputs.js';
import type { DatabaseTarget } from '../../src/config/database-target.js';
import { loadSeedData } from '../../src/seed/index.js';
import { cloneStructure } from '../../src/structure/index.js';
import { readProductionFingerprint } from '../../src/pipeline/read-production-fingerprint.js';
import { selectionFromConfig } from '../../src/structure/schema-selection.js';
import { adminQuery, databaseUrl, SERVER_URL, uniqueName } from '../helpers/databases.js';

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
  });
}

/** A tiny contentgen production, a project root holding a seed file, and a config pointing at both. */
export async function speedProject(label: string): Promise<{
  config: ResolvedConfig;
  production: string;
  rootDir: string;
  reconfigure: (overrides: PgtwinConfig) => Promise<ResolvedConfig>;
}> {
  const production = uniqueName(`${label}_prod`);
  await adminQuery(`CREATE DATABASE "${production}"`);
  await createContentgenProduction(databaseUrl(production), { data: FIXTURE_SIZES.tiny });
  const rootDir = await mkdtemp(path.join(tmpdir(), 'pgtwin-speed-'));
  await copyFile(new URL('../seed/data/clients.json', import.meta.url), path.join(rootDir, 'seed.json'));
  const reconfigure = (overrides: PgtwinConfig) =>
    resolveConfig({
      rootDir,
      configFile: false,
      env: {},
      seeds: 'seed.json',
      ...overrides,
      production: { ...SERVER, database: production },
      test: { ...SERVER, database: uniqueName(`${label}_test`), ...overrides.test },
      admin: { ...SERVER, database: 'postgres' },
    });
  return { config: await reconfigure({}), production, rootDir, reconfigure };
}

/** What the pipeline reads from the servers for the fingerprint. */
export async function readSources(config: ResolvedConfig): Promise<FingerprintSources> {
  const production = await connect(config.production, 'production');
  try {
    const { rows } = await production.query<{ v: string }>(
      `SELECT current_setting('server_version_num') AS v`,
    );
    const { structure, data } = await readProductionFingerprint(config, production);
    return {
      structure,
      data,
      serverVersion: rows[0]!.v,
      pgtwinVersion: pgtwinVersion(),
    };
  } finally {
    await production.end();
  }
}

/** The twin build the pipeline runs: structure from production, mirrored tables, seeds. */
export function twinBuilder(config: ResolvedConfig, calls: { count: number } = { count: 0 }) {
  return async (target: DatabaseTarget): Promise<void> => {
    calls.count++;
    const production = await connect(config.production, 'production');
    const test = new pg.Client(target.clientConfig());
    await test.connect();
    try {
      await cloneStructure(production, test, { selection: selectionFromConfig(config) });
      await syncTables(production, test, { policy: config });
      await loadSeedData(test, config.seeds, {
        rootDir: config.rootDir,
        projectSchemas: config.projectSchemas,
      });
    } finally {
      await test.end();
      await production.end();
    }
  };
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
