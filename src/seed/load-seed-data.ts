import type pg from 'pg';
import type { SeedError } from '../errors.js';
import { sortTablesByForeignKeys } from '../structure/sort-tables-by-foreign-keys.js';
import type { CatalogTable } from '../structure/table-catalog.js';
import { BulkKeyCheck } from './bulk-key-check.js';
import { copyRows } from './copy-rows.js';
import { createProjectSchemas, dropSchemas } from './create-project-schemas.js';
import type { UserFactories } from './factory-registry.js';
import { insertRows } from './insert-rows.js';
import { planFromDatabase, readSeedDocuments } from './plan-from-database.js';
import { resolveWhereRefs } from './resolve-where-refs.js';
import type { SeedLimitsConfig } from '../config/pgtwin-config.js';
import { rowOrdinal, type PlannedRow, type SeedPlan } from './seed-plan.js';
import { silentLogger, type Logger } from '../util/logger.js';

/** Options of {@link loadSeedData}. */
export interface LoadSeedOptions {
  /** The user's factories, overriding the automatic ones of their tables (see `loadUserFactories`). */
  factories?: UserFactories;
  /**
   * Pattern of the project schemas (`*` matches any characters). `$projectSchemas` copies the structure of an
   * existing schema matching it; its tables' factories are known under bare names.
   * @default DEFAULT_PROJECT_SCHEMA_PATTERN
   */
  projectSchemas?: string;
  /**
   * Directory relative seed paths are resolved against.
   * @default process.cwd()
   */
  rootDir?: string;
  /**
   * Bounds on `$count` and total rows; a seed over them is a `SeedError`.
   * @default { maxCount: DEFAULT_SEED_MAX_COUNT, maxRows: DEFAULT_SEED_MAX_ROWS }
   */
  limits?: SeedLimitsConfig;
  /**
   * Set when `client` is already inside a transaction: the seed loads inside a savepoint of it rather than a
   * transaction of its own (and deferred constraints stay deferred, so their violations surface at commit).
   * @default false
   */
  inTransaction?: boolean;
  /**
   * Where phase timings go (debug lines).
   * @default silentLogger
   */
  logger?: Logger;
}

/** What {@link loadSeedData} loaded. */
export interface SeedResult {
  /** The seed files, absolute, in load order. */
  files: string[];
  /** Rows inserted per table key. */
  tables: Record<string, number>;
  /** All rows inserted. */
  rows: number;
  /** Project schemas `$projectSchemas` created (those that already existed are left as they are). */
  createdSchemas: string[];
}

export const DEFAULT_PROJECT_SCHEMA_PATTERN = 'project_*';

/**
 * Rows per statement. INSERT parameters are one array per column and COPY streams, so this bounds only memory
 * and the work a rejected chunk costs: it is replayed in halves to find the row to blame.
 */
const CHUNK_ROWS = 20000;
const SAVEPOINT = 'pgtwin_seed';

/**
 * Loads seed files into the database `client` is connected to, all in one transaction: a failure loads
 * nothing (project schemas it created are dropped again). Rows are inserted in foreign-key order whatever the
 * file order, with one statement per table, column set and dependency level: COPY, or a multi-row
 * INSERT ... RETURNING for tables whose rows references read. Every mistake in the files is a
 * {@link SeedError} naming the file, line, column and JSON path.
 *
 * @example
 * ```ts
 * const result = await loadSeedData(client, 'tests/data/seed_data.json', { factories });
 * result.rows; // 10000
 * ```
 */
export async function loadSeedData(
  client: pg.ClientBase,
  seeds: string | readonly string[],
  options: LoadSeedOptions = {},
): Promise<SeedResult> {
  const log = options.logger ?? silentLogger;
  let phaseStart = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    log.debug(`seed ${name} ${Math.round(now - phaseStart)} ms`);
    phaseStart = now;
  };
  const { files, documents } = await readSeedDocuments(seeds, options.rootDir, options.limits);
  phase('parse');
  const pattern = options.projectSchemas ?? DEFAULT_PROJECT_SCHEMA_PATTERN;

  const createdSchemas = await createProjectSchemas(client, documents, pattern, options.inTransaction);
  phase('project schemas');
  await client.query(options.inTransaction ? `SAVEPOINT ${SAVEPOINT}` : 'BEGIN');
  try {
    // Check deferrable keys per statement, so a violation is blamed on its row rather than on COMMIT. The
    // commit need not wait for the disk: a test database lost to a machine crash is rebuilt on the next run.
    if (!options.inTransaction) {
      await client.query('SET CONSTRAINTS ALL IMMEDIATE');
      await client.query('SET LOCAL synchronous_commit = off');
    }
    const plan = await planFromDatabase(client, documents, {
      factories: options.factories,
      projectSchemas: pattern,
      phase,
    });
    await resolveWhereRefs(client, plan);
    const tables = await insertPlan(client, plan);
    phase('insert');
    await client.query(options.inTransaction ? `RELEASE SAVEPOINT ${SAVEPOINT}` : 'COMMIT');
    phase('commit');
    const rows = Object.values(tables).reduce((sum, count) => sum + count, 0);
    return { files, tables, rows, createdSchemas };
  } catch (error) {
    await client
      .query(options.inTransaction ? `ROLLBACK TO SAVEPOINT ${SAVEPOINT}` : 'ROLLBACK')
      .catch(() => undefined);
    await dropSchemas(client, createdSchemas);
    throw error;
  }
}

/**
 * Inserts the plan in rounds: each round walks the tables in foreign-key order and inserts the rows whose
 * referenced rows are in, so references may point forward in the files and rows of one table may reference
 * each other. Within a table, file order is kept.
 */
async function insertPlan(client: pg.ClientBase, plan: SeedPlan): Promise<Record<string, number>> {
  const pending = new Map<CatalogTable, PlannedRow[]>();
  for (const row of plan.rows) {
    const rows = pending.get(row.table);
    if (rows) rows.push(row);
    else pending.set(row.table, [row]);
  }
  const order = sortTablesByForeignKeys([...pending.keys()]).tables;
  const bulk = await BulkKeyCheck.for(client, order);
  const counts: Record<string, number> = {};
  // Only keyed rows can be depended on, so only they are remembered.
  const inserted = new Set<PlannedRow>();
  let insertedRows = 0;
  // Inserting only each table's ready prefix keeps file order (and so id order); it can stall when rows of
  // two tables reference each other crosswise, and then one round takes every ready row.
  let inFileOrder = true;
  while (insertedRows < plan.rows.length) {
    let progress = false;
    for (const table of order) {
      const ready: PlannedRow[] = [];
      const waiting: PlannedRow[] = [];
      for (const row of pending.get(table)!) {
        const canGo =
          (!inFileOrder || waiting.length === 0) &&
          row.dependencies.every((dependency) => inserted.has(dependency));
        (canGo ? ready : waiting).push(row);
      }
      if (ready.length === 0) continue;
      progress = true;
      pending.set(table, waiting);
      fillKeyRefs(ready, plan);
      for (const run of sameColumnRuns(ready)) {
        for (let start = 0; start < run.length; start += CHUNK_ROWS) {
          await insertChunk(
            client,
            table,
            run.slice(start, start + CHUNK_ROWS),
            plan.returning.get(table.key) ?? [],
            bulk,
          );
        }
      }
      for (const row of ready) if (row.key !== undefined) inserted.add(row);
      insertedRows += ready.length;
      counts[table.key] = (counts[table.key] ?? 0) + ready.length;
    }
    inFileOrder = progress;
  }
  return counts;
}

/** Sets each `$key` reference of `rows` to the referenced row's inserted value. */
function fillKeyRefs(rows: readonly PlannedRow[], plan: SeedPlan): void {
  // The rows of one entry share their references, and so the values; look them up once per entry.
  const byEntry = new Map<PlannedRow['refs'], [string, string | null][]>();
  for (const row of rows) {
    let values = byEntry.get(row.refs);
    if (!values) {
      values = [];
      for (const [column, ref] of row.refs) {
        const { row: target, column: read } = plan.refs.get(ref)!;
        if (target) values.push([column, (target.inserted![read] as string | null) ?? null]);
      }
      byEntry.set(row.refs, values);
    }
    for (const [column, value] of values) row.text[column] = value;
  }
}

/** Consecutive rows giving the same columns, which one statement can take. */
function sameColumnRuns(rows: readonly PlannedRow[]): PlannedRow[][] {
  const runs: PlannedRow[][] = [];
  let previous: string[] = [];
  for (const row of rows) {
    const columns = Object.keys(row.text);
    // Rows of one entry list their columns in the same order; a different order only starts a new run.
    if (columns.length === previous.length && columns.every((name, index) => name === previous[index]))
      runs.at(-1)!.push(row);
    else runs.push([row]);
    previous = columns;
  }
  return runs;
}

/**
 * Inserts one chunk: with COPY, or with INSERT ... RETURNING when references read its rows (or when it gives no
 * column at all, which COPY cannot take). Foreign keys are checked once per chunk when the table allows it (see
 * {@link BulkKeyCheck}), else row by row by PostgreSQL in a savepoint whose failure is blamed on its row.
 */
async function insertChunk(
  client: pg.ClientBase,
  table: CatalogTable,
  rows: readonly PlannedRow[],
  returning: readonly string[],
  bulk: BulkKeyCheck,
): Promise<void> {
  const texts = rows.map((row) => row.text);
  const write = async () => {
    if (returning.length > 0 || Object.keys(texts[0]!).length === 0) {
      const result = await insertRows(client, table, texts, returning);
      result.forEach((values, index) => (rows[index]!.inserted = values));
    } else {
      await copyRows(client, table, texts);
    }
  };
  if (await bulk.write(table, texts, write)) return;
  await client.query(`SAVEPOINT ${SAVEPOINT}_chunk`);
  try {
    await write();
  } catch (error) {
    await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}_chunk`);
    throw await blameRow(client, table, rows, error);
  }
  await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}_chunk`);
}

/**
 * Finds the row the database rejects in a rejected chunk and turns its error into a {@link SeedError} pointing
 * at that row. It replays the chunk in halves, keeping each half that goes in, so the culprit is the first row
 * that fails after the rows before it, as in a row-by-row replay, in about log2(rows) statements.
 */
async function blameRow(
  client: pg.ClientBase,
  table: CatalogTable,
  rows: readonly PlannedRow[],
  chunkError: unknown,
): Promise<unknown> {
  if (!isDatabaseError(chunkError)) return chunkError;
  let remaining = rows;
  while (remaining.length > 0) {
    const half = remaining.slice(0, Math.ceil(remaining.length / 2));
    await client.query(`SAVEPOINT ${SAVEPOINT}_row`);
    try {
      await insertRows(
        client,
        table,
        half.map((row) => row.text),
        [],
      );
      await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}_row`);
      remaining = remaining.slice(half.length);
    } catch (error) {
      await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}_row`);
      if (half.length === 1) return rowError(half[0]!, isDatabaseError(error) ? error : chunkError);
      remaining = half;
    }
  }
  return rowError(rows[0]!, chunkError);
}

interface DatabaseError extends Error {
  code: string;
  detail?: string;
  constraint?: string;
}

function isDatabaseError(error: unknown): error is DatabaseError {
  return (
    error instanceof Error &&
    typeof (error as DatabaseError).code === 'string' &&
    (error as DatabaseError).code.length === 5
  );
}

function rowError(row: PlannedRow, error: unknown): SeedError {
  const { message, detail, constraint } = error as DatabaseError;
  return row.source.error(
    row.path,
    `${row.table.key} rejected this row${rowOrdinal(row.index, row.count)}: ${message}${detail ? ` (${detail})` : ''}. Fix the row; nothing was loaded.`,
    { constraint, cause: error },
  );
}
