import type pg from 'pg';
import type { UserFactories } from './factory-registry.js';
import { DEFAULT_PROJECT_SCHEMA_PATTERN } from './load-seed-data.js';
import { planFromDatabase, readSeedDocuments } from './plan-from-database.js';
import { resolveWhereRefs } from './resolve-where-refs.js';
import type { SeedLimitsConfig } from '../config/pgtwin-config.js';

/** Options of {@link checkSeedData}. */
export interface CheckSeedOptions {
  /** The user's factories, as for loading. */
  factories?: UserFactories;
  /** @default DEFAULT_PROJECT_SCHEMA_PATTERN */
  projectSchemas?: string;
  /** @default process.cwd() */
  rootDir?: string;
  /**
   * Bounds on `$count` and total rows; a seed over them is a `SeedError`.
   * @default { maxCount: DEFAULT_SEED_MAX_COUNT, maxRows: DEFAULT_SEED_MAX_ROWS }
   */
  limits?: SeedLimitsConfig;
  /**
   * Tables (`schema.table`) whose rows the checked database shares with the test database, such as the
   * mirrored tables in production: `where` references into them are looked up; others are left for the load.
   * @default []
   */
  sharedTables?: readonly string[];
}

/** What {@link checkSeedData} found. */
export interface SeedCheck {
  /** The seed files, absolute, in load order. */
  files: string[];
  /** Rows the seed would insert, per table key. */
  tables: Record<string, number>;
  rows: number;
}

/**
 * Plans seed files against a database with the test database's structure, production, without writing
 * anything: malformed JSON, unknown tables, columns and factories, unresolved or cyclic `$ref`s and `where`
 * references into `sharedTables` are `SeedError`s, exactly as a load would report them. Test-only project
 * schemas (`$projectSchemas`) are planned with the structure of the first project schema, as the load creates
 * them. It reads in one read-only transaction.
 *
 * @example
 * const check = await checkSeedData(production, 'tests/data/seed_data.json', { sharedTables: ['public.object_models'] });
 * check.rows; // 1204
 */
export async function checkSeedData(
  client: pg.ClientBase,
  seeds: string | readonly string[],
  options: CheckSeedOptions = {},
): Promise<SeedCheck> {
  const { files, documents } = await readSeedDocuments(seeds, options.rootDir, options.limits);
  await client.query('BEGIN READ ONLY');
  try {
    const plan = await planFromDatabase(client, documents, {
      factories: options.factories,
      projectSchemas: options.projectSchemas ?? DEFAULT_PROJECT_SCHEMA_PATTERN,
      standIns: true,
    });
    await resolveWhereRefs(client, plan, new Set(options.sharedTables ?? []));
    const tables: Record<string, number> = {};
    for (const row of plan.rows) tables[row.table.key] = (tables[row.table.key] ?? 0) + 1;
    return { files, tables, rows: plan.rows.length };
  } finally {
    await client.query('ROLLBACK');
  }
}
