import type pg from 'pg';
import type { CatalogTable } from '../structure/table-catalog.js';

/** Pages `[from, to)` of a table (`to` undefined: to the end). */
export interface PageRange {
  from: number;
  to: number | undefined;
}

/** One unit of work for parallel readers: a table whole (`range` undefined), or a range of its pages. */
export interface TableUnit {
  table: CatalogTable;
  range: PageRange | undefined;
  /** Its size in pages: the table's, or the range's. */
  pages: number;
}

/** Tables below twice this many pages (2 MB) are read whole by one session. */
const RANGE_PAGES = 128;

/**
 * How many sessions are worth opening for `units`: one per range's worth of rows (1 MB, and at least one),
 * at most one per unit and `sessions`. A session is a server process started and logged in, about 25 ms of
 * CPU on a 2-core machine, more than a few small tables take to read, copy or index whole (a small project's
 * rebuild opened 20 sessions for 9 rows; 14 with this).
 */
export function sessionsFor(units: readonly TableUnit[], sessions: number): number {
  const pages = units.reduce((sum, unit) => sum + unit.pages, 0);
  return Math.max(1, Math.min(sessions, units.length, Math.ceil(pages / RANGE_PAGES)));
}

/**
 * Cuts `tables` into units of work for `sessions` parallel readers, largest first: each table whole, or a large
 * plain table cut into at most `2 × sessions` ranges of pages (read by a TID range scan, PostgreSQL 14 and
 * later). Sizes are read in the caller's transaction.
 */
export async function pageRanges(
  client: pg.ClientBase,
  tables: readonly CatalogTable[],
  sessions: number,
): Promise<TableUnit[]> {
  const { rows } = await client.query<{ pages: string; ranges: boolean }>(
    // A partitioned table's rows are in its partitions (pg_partition_tree lists none for a plain table).
    `SELECT (greatest(pg_catalog.pg_relation_size(t::regclass),
              (SELECT coalesce(sum(pg_catalog.pg_relation_size(relid)), 0) FROM pg_catalog.pg_partition_tree(t::regclass)))
              / current_setting('block_size')::int)::text AS pages,
            current_setting('server_version_num')::int >= 140000 AS ranges
       FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n`,
    [tables.map((table) => table.qualifiedName)],
  );
  const units = tables.map((table, index) => {
    const pages = Number(rows[index]!.pages);
    const cut = !table.partitioned && rows[index]!.ranges && pages >= 2 * RANGE_PAGES;
    if (!cut) return [{ table, range: undefined, pages }];
    // Twice as many ranges as readers: a reader done early takes another range of the same table rather than
    // the next table, so the largest table (whose indexes take longest) is complete first.
    const count = Math.min(2 * sessions, Math.floor(pages / RANGE_PAGES));
    const size = Math.ceil(pages / count);
    return Array.from({ length: count }, (_, i) => ({
      table,
      range: { from: i * size, to: i === count - 1 ? undefined : (i + 1) * size },
      pages: Math.min(size, pages - i * size),
    }));
  });
  return units.flat().sort((a, b) => b.pages - a.pages);
}

/** The `WHERE` clause selecting the rows of `range` (empty for a whole table). */
export function pageRangeSql(range: PageRange | undefined): string {
  if (!range) return '';
  const to = range.to === undefined ? '' : ` AND ctid < '(${range.to},0)'::tid`;
  return ` WHERE ctid >= '(${range.from},0)'::tid${to}`;
}
