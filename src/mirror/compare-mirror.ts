import { createInterface } from 'node:readline';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { quoteIdent, type CatalogTable } from '../structure/table-catalog.js';
import { endTransaction } from '../connection/in-transaction.js';
import { beginSnapshot } from './mirror-session.js';
import { readTables } from './resolve-tables.js';
import { checksumTable, rowHashSql, type TableChecksum } from './table-checksum.js';

/** How many keys of each kind a drift report names per table. */
export const DEFAULT_DRIFT_KEY_LIMIT = 20;

/** A primary key value, column name to value, e.g. `{ id: 42 }`. */
export type RowKey = Record<string, unknown>;

/** Keys of one kind (added, removed or changed), the first few by key order, and how many there are. */
export interface KeyList {
  count: number;
  keys: RowKey[];
}

/** Whether the target's copy of one table holds the source's data. */
export interface TableDrift {
  table: string;
  same: boolean;
  source: TableChecksum;
  target: TableChecksum;
  /**
   * Which rows differ, seen from the target: `added` are only in the target, `removed` only in the source,
   * `changed` in both with different content. `null` when the table has no primary key to name rows by.
   */
  rows: { added: KeyList; removed: KeyList; changed: KeyList } | null;
}

/** Result of {@link compareMirror}. */
export interface MirrorDrift {
  /** Whether every table is the same. */
  same: boolean;
  tables: TableDrift[];
}

/**
 * Compares the data of `tables` (`schema.table`) between source and target, each read in one read-only
 * snapshot: row counts and checksums, and for a table that differs and has a primary key, the keys added,
 * removed and changed (the first `keyLimit` of each). Rows are compared as streams of (key, row hash)
 * sorted by key on each server, so no table is held in memory. Neither client may be inside a transaction.
 *
 * @example
 * ```ts
 * const drift = await compareMirror(production, test, ['public.prompts']);
 * if (!drift.same) console.log(renderMirrorDrift(drift));
 * ```
 */
export async function compareMirror(
  source: pg.ClientBase,
  target: pg.ClientBase,
  tables: readonly string[],
  options: { keyLimit?: number } = {},
): Promise<MirrorDrift> {
  const keyLimit = options.keyLimit ?? DEFAULT_DRIFT_KEY_LIMIT;
  await beginSnapshot(source);
  let failure: unknown;
  try {
    await beginSnapshot(target);
    try {
      const sourceTables = await readTables(source, tables, 'source database');
      const targetTables = await readTables(target, tables, 'target database');
      const result: TableDrift[] = [];
      for (const [index, sourceTable] of sourceTables.entries()) {
        const targetTable = targetTables[index]!;
        const sums = {
          source: await checksumTable(source, sourceTable),
          target: await checksumTable(target, targetTable),
        };
        const same = sums.source.checksum === sums.target.checksum;
        const rows =
          sourceTable.primaryKey === null
            ? null
            : same
              ? {
                  added: { count: 0, keys: [] },
                  removed: { count: 0, keys: [] },
                  changed: { count: 0, keys: [] },
                }
              : await diffRows(source, sourceTable, target, targetTable, keyLimit);
        result.push({ table: sourceTable.key, same, ...sums, rows });
      }
      return { same: result.every((table) => table.same), tables: result };
    } finally {
      await endTransaction(target);
    }
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    await endTransaction(source, failure);
  }
}

async function diffRows(
  source: pg.ClientBase,
  sourceTable: CatalogTable,
  target: pg.ClientBase,
  targetTable: CatalogTable,
  keyLimit: number,
): Promise<NonNullable<TableDrift['rows']>> {
  const primaryKey = sourceTable.primaryKey!;
  const added: KeyList = { count: 0, keys: [] };
  const removed: KeyList = { count: 0, keys: [] };
  const changed: KeyList = { count: 0, keys: [] };
  const note = (list: KeyList, hexKey: string) => {
    list.count++;
    if (list.keys.length < keyLimit)
      list.keys.push(JSON.parse(Buffer.from(hexKey, 'hex').toString('utf8')) as RowKey);
  };

  const left = keyedRows(source, sourceTable, primaryKey);
  const right = keyedRows(target, targetTable, primaryKey);
  let a = await left.next();
  let b = await right.next();
  while (!a.done || !b.done) {
    if (b.done || (!a.done && a.value.key < b.value.key)) {
      note(removed, a.value!.key);
      a = await left.next();
    } else if (a.done || b.value.key < a.value.key) {
      note(added, b.value.key);
      b = await right.next();
    } else {
      if (a.value.hash !== b.value.hash) note(changed, a.value.key);
      a = await left.next();
      b = await right.next();
    }
  }
  return { added, removed, changed };
}

/**
 * (key, row hash) of every row, streamed in key order. The key is the hex of the key's JSON text, sorted
 * bytewise (COLLATE "C"), so both servers and JavaScript's `<` agree on the order whatever the collations.
 */
async function* keyedRows(
  client: pg.ClientBase,
  table: CatalogTable,
  primaryKey: readonly string[],
): AsyncGenerator<{ key: string; hash: string }> {
  const keyJson = `json_build_object(${primaryKey.map((c) => `'${c.replace(/'/g, "''")}', ${quoteIdent(c)}`).join(', ')})::text`;
  const stream = client.query(
    copyStreams.to(
      `COPY (SELECT k, h FROM (SELECT encode(convert_to(${keyJson}, 'UTF8'), 'hex') AS k, ${rowHashSql(table)} AS h
       FROM ${table.qualifiedName}) AS keyed ORDER BY k COLLATE "C") TO STDOUT`,
    ),
  );
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    const tab = line.indexOf('\t');
    yield { key: line.slice(0, tab), hash: line.slice(tab + 1) };
  }
}
