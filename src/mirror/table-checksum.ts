import type pg from 'pg';
import { quoteIdent, type CatalogTable } from '../structure/table-catalog.js';
import { endTransaction } from '../connection/in-transaction.js';
import { beginSnapshot } from './mirror-session.js';
import { readTables } from './resolve-tables.js';

/** Row count and content checksum of one table. */
export interface TableChecksum {
  rowCount: number;
  /** 32 hex digits; equal checksums mean equal rows (as a multiset), whatever their physical order. */
  checksum: string;
}

/**
 * Checksums of `tables` (`schema.table`), all read in one read-only snapshot. Each row is hashed as the md5
 * of its text (columns in name order, generated ones included, rendered under the mirror session settings),
 * and the hashes are summed, so the aggregate needs no sort and streams through tables of any size.
 * Dumps, the drift report and the tests all compare through this one function. Call it on a client with no
 * open transaction.
 *
 * @example
 * const sums = await tableChecksums(client, ['public.prompts']);
 * sums['public.prompts']; // { rowCount: 120, checksum: '5d41402abc4b2a76b9719d911017c592' }
 */
export async function tableChecksums(
  client: pg.ClientBase,
  tables: readonly string[],
  options: ChecksumOptions = {},
): Promise<Record<string, TableChecksum>> {
  await beginSnapshot(client);
  let failure: unknown;
  try {
    const result: Record<string, TableChecksum> = {};
    for (const table of await readTables(client, tables, 'database')) {
      result[table.key] = await checksumTable(client, table, options);
    }
    return result;
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    await endTransaction(client, failure);
  }
}

/** Options of {@link tableChecksums}. */
export interface ChecksumOptions {
  /**
   * Hash each row's text with PostgreSQL's own 64-bit text hash, twice with different seeds, instead of md5:
   * about twice as quick and as exact, but PostgreSQL does not promise that hash to stay the same across
   * releases, so such checksums only compare with others taken on the same server, as the template
   * fingerprint does. Dumps and the drift report use md5.
   * @default false
   */
  quick?: boolean;
}

/** {@link tableChecksums} of one table, in the caller's transaction, which must have the mirror session settings. */
export async function checksumTable(
  client: pg.ClientBase,
  table: CatalogTable,
  options: ChecksumOptions = {},
): Promise<TableChecksum> {
  // Two sums of 64-bit hashes, of the md5's halves or of two seeded text hashes: order-independent, exact
  // (numeric), 128 bits in all.
  const sql = options.quick
    ? `SELECT count(*) AS row_count,
         md5(count(*) || '/' || coalesce(sum(hashtextextended(t, 0)), 0)
           || '/' || coalesce(sum(hashtextextended(t, 1)), 0)) AS checksum
       FROM (SELECT ${rowTextSql(table)} AS t FROM ${table.qualifiedName}) AS texts`
    : `SELECT count(*) AS row_count,
         md5(count(*) || '/' || coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint), 0)
           || '/' || coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint), 0)) AS checksum
       FROM (SELECT ${rowHashSql(table)} AS h FROM ${table.qualifiedName}) AS hashed`;
  const { rows } = await client.query<{ row_count: string; checksum: string }>(sql);
  const row = rows[0]!;
  return { rowCount: Number(row.row_count), checksum: row.checksum };
}

/** SQL for the md5 of one row of `table`, the unit both checksums and the drift report's row comparison use. */
export function rowHashSql(table: CatalogTable): string {
  return `md5(${rowTextSql(table)})`;
}

/** SQL for the text of one row of `table`: its columns in name order, so column order does not matter. */
function rowTextSql(table: CatalogTable): string {
  const columns = table.columns.map((column) => column.name).sort();
  return `ROW(${columns.map(quoteIdent).join(', ')})::text`;
}
