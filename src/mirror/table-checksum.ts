import { createHash } from 'node:crypto';
import type pg from 'pg';
import { quoteIdent, type CatalogTable } from '../structure/table-catalog.js';
import { isOutOfConnections } from '../connection/connect.js';
import { endTransaction } from '../connection/in-transaction.js';
import { beginSnapshot, joinSnapshot, PARALLEL_SESSIONS, shareSnapshot } from './mirror-session.js';
import { pageRanges, pageRangeSql, sessionsFor, type PageRange, type TableUnit } from './page-ranges.js';
import { readTables } from './resolve-tables.js';
import { copiedColumns } from './sync-tables.js';

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
 * With `openSession`, the tables (large ones cut into ranges of pages) are read at once over several
 * sessions that join the snapshot `client` exports; the checksums are the same.
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
  let failure: unknown;
  const sessions: pg.Client[] = [];
  try {
    let snapshot: string | undefined;
    if (options.snapshot || options.openSession) snapshot = await shareSnapshot(client, options.snapshot);
    else await beginSnapshot(client);
    const catalog = await readTables(client, tables, 'database');
    await options.inSnapshot?.(client, catalog);
    const sums = new Map(catalog.map((table) => [table.key, [] as PartialSums[]]));
    const units: TableUnit[] = snapshot
      ? await pageRanges(client, catalog, options.sessions ?? PARALLEL_SESSIONS)
      : catalog.map((table) => ({ table, range: undefined, pages: 0 }));
    const work = async (session: pg.ClientBase) => {
      for (let unit = units.shift(); unit; unit = units.shift()) {
        sums.get(unit.table.key)!.push(await partialSums(session, unit.table, options, unit.range));
      }
    };
    // The exporting session reads too; the others join it (they must not start before the export).
    const extra = snapshot ? sessionsFor(units, options.sessions ?? PARALLEL_SESSIONS) - 1 : 0;
    await Promise.all([
      work(client),
      ...Array.from({ length: extra }, async () => {
        let session: pg.Client;
        try {
          session = await options.openSession!();
        } catch (error) {
          // No connection slot left for it: the sessions that connected, `client` at least, read its share.
          if (isOutOfConnections(error)) return;
          throw error;
        }
        sessions.push(session);
        await joinSnapshot(session, snapshot!);
        await work(session);
      }),
    ]);
    return Object.fromEntries(catalog.map((table) => [table.key, combine(sums.get(table.key)!)]));
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    await endTransaction(client, failure);
    await Promise.all(sessions.map((session) => session.end().catch(() => undefined)));
  }
}

/** Options of {@link tableChecksums}. */
export interface ChecksumOptions {
  /**
   * Hash each row's text with PostgreSQL's own 64-bit text hash, twice with different seeds, instead of md5,
   * and leave generated columns out (the copy recomputes them from the others): about twice as quick and as
   * exact about what a copy carries, but PostgreSQL does not promise that hash to stay the same across
   * releases, so such checksums only compare with others taken on the same server, as the template
   * fingerprint does. Dumps and the drift report use md5.
   * @default false
   */
  quick?: boolean;
  /**
   * Opens another session on the same database (read-only for production), so the tables are read in
   * parallel, all in one exported snapshot. @default none: everything is read on `client`
   */
  openSession?: () => Promise<pg.Client>;
  /** How many sessions `openSession` opens at most. @default PARALLEL_SESSIONS */
  sessions?: number;
  /**
   * An exported snapshot (`holdSnapshot`) to read in, kept open by its exporter until every session
   * joined. @default a snapshot of `client`'s own
   */
  snapshot?: string;
  /**
   * Runs on `client` in the checksums' snapshot before the rows are read, with the tables as the catalog
   * describes them (e.g. to take a {@link captureBaseline}). It must leave the transaction usable.
   */
  inSnapshot?: (client: pg.ClientBase, catalog: readonly CatalogTable[]) => Promise<void>;
}

/** {@link tableChecksums} of one table, in the caller's transaction, which must have the mirror session settings. */
export async function checksumTable(
  client: pg.ClientBase,
  table: CatalogTable,
  options: ChecksumOptions = {},
): Promise<TableChecksum> {
  return combine([await partialSums(client, table, options)]);
}

/** What a checksum adds up: rows and two sums of 64-bit row hashes, as decimal text (exact `numeric`). */
interface PartialSums {
  count: bigint;
  first: bigint;
  second: bigint;
}

async function partialSums(
  client: pg.ClientBase,
  table: CatalogTable,
  options: ChecksumOptions,
  range?: PageRange,
): Promise<PartialSums> {
  // Two sums of 64-bit hashes, of the md5's halves or of two seeded text hashes: order-independent, exact
  // (numeric), 128 bits in all. OFFSET 0 keeps the planner from inlining the subquery, which would render
  // (and md5) each row once per sum: it halves the time.
  const where = pageRangeSql(range);
  const sql = options.quick
    ? `SELECT count(*)::text AS count, coalesce(sum(hashtextextended(t, 0)), 0)::text AS first,
         coalesce(sum(hashtextextended(t, 1)), 0)::text AS second
       FROM (SELECT ${rowTextSql(table, copiedColumns(table))} AS t FROM ${table.qualifiedName}${where} OFFSET 0) AS texts`
    : `SELECT count(*)::text AS count, coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint), 0)::text AS first,
         coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint), 0)::text AS second
       FROM (SELECT ${rowHashSql(table)} AS h FROM ${table.qualifiedName}${where} OFFSET 0) AS hashed`;
  const { rows } = await client.query<{ count: string; first: string; second: string }>(sql);
  const row = rows[0]!;
  return { count: BigInt(row.count), first: BigInt(row.first), second: BigInt(row.second) };
}

function combine(parts: readonly PartialSums[]): TableChecksum {
  const total = parts.reduce(
    (sum, part) => ({
      count: sum.count + part.count,
      first: sum.first + part.first,
      second: sum.second + part.second,
    }),
    { count: 0n, first: 0n, second: 0n },
  );
  const text = `${total.count}/${total.first}/${total.second}`;
  return { rowCount: Number(total.count), checksum: createHash('md5').update(text).digest('hex') };
}

/** SQL for the md5 of one row of `table`, the unit both checksums and the drift report's row comparison use. */
export function rowHashSql(table: CatalogTable): string {
  return `md5(${rowTextSql(
    table,
    table.columns.map((column) => column.name),
  )})`;
}

/** SQL for the text of one row of `table`: `columns` in name order, so column order does not matter. */
function rowTextSql(table: CatalogTable, columns: readonly string[]): string {
  return `ROW(${[...columns].sort().map(quoteIdent).join(', ')})::text`;
}
