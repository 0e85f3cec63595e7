import type { Queryable } from '../structure/queryable.js';
import { quoteIdent, type CatalogTable } from '../structure/table-catalog.js';

/** A row as PostgreSQL input text: column name to text, `null` for SQL NULL. */
export type TextRow = Readonly<Record<string, string | null>>;

/**
 * Inserts `rows` (all with the same columns) into `table` in one statement and returns the `returning` columns
 * of each row, in input order: as text for a column list, parsed by pg for `'*'`. The statement has one
 * parameter per column, a text array unnested and cast to the column's type, so its size never meets the
 * 65535-parameter limit and PostgreSQL plans it once for any number of rows. The cast goes to the type without
 * its modifier, so a too-long value for `varchar(n)` fails as in a plain INSERT instead of being cut.
 *
 * @example
 * ```ts
 * const [{ id }] = await insertRows(client, clients, [{ name: 'Acme', slug: 'acme' }], ['id']); // id is '1'
 * ```
 */
export async function insertRows(
  client: Queryable,
  table: CatalogTable,
  rows: readonly TextRow[],
  returning: readonly string[] | '*',
): Promise<Record<string, unknown>[]> {
  const given = new Set(Object.keys(rows[0] ?? {}));
  const columns = table.columns.filter((column) => given.has(column.name));
  const overriding = columns.some((column) => column.identity === 'always') ? ' OVERRIDING SYSTEM VALUE' : '';
  const returned =
    returning === '*'
      ? '*'
      : returning.map((name) => `${quoteIdent(name)}::text AS ${quoteIdent(name)}`).join(', ');
  const tail = returned === '' ? '' : ` RETURNING ${returned}`;
  if (columns.length === 0) {
    const { rows: result } = await client.query(
      `INSERT INTO ${table.qualifiedName} SELECT FROM generate_series(1, $1)${tail}`,
      [rows.length],
    );
    return result as Record<string, unknown>[];
  }
  const aliases = columns.map((_, index) => `c${index + 1}`);
  const sql =
    `INSERT INTO ${table.qualifiedName} (${columns.map((column) => quoteIdent(column.name)).join(', ')})${overriding} ` +
    `SELECT ${columns.map((column, index) => `u.${aliases[index]}::${quoteIdent(column.udtSchema)}.${quoteIdent(column.udtName)}`).join(', ')} ` +
    `FROM unnest(${columns.map((_, index) => `$${index + 1}::text[]`).join(', ')}) ` +
    `WITH ORDINALITY AS u(${aliases.join(', ')}, pgtwin_ord) ORDER BY u.pgtwin_ord${tail}`;
  const params = columns.map((column) => rows.map((row) => row[column.name] ?? null));
  const { rows: result } = await client.query(sql, params);
  return result as Record<string, unknown>[];
}
