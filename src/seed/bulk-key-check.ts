import type pg from 'pg';
import {
  quoteIdent,
  tableKey,
  type CatalogForeignKey,
  type CatalogTable,
} from '../structure/table-catalog.js';
import type { TextRow } from './insert-rows.js';

/**
 * Tables whose INSERT and COPY fire nothing but foreign-key checks, so that switching triggers off and checking
 * each key once for a whole chunk changes nothing but speed. Excluded: any other INSERT trigger that would stop
 * or start firing with `session_replication_role = replica` (user triggers, deferrable unique checks), rules
 * (which that setting also switches), partitioned tables (their partitions carry the triggers) and multi-column
 * `MATCH FULL` keys.
 */
const BULK_CHECKABLE_SQL = `
SELECT n.nspname || '.' || c.relname AS key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN unnest($1::text[], $2::text[]) AS t(schema, name) ON n.nspname = t.schema AND c.relname = t.name
WHERE c.relkind = 'r' AND NOT c.relhasrules
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                  WHERE g.tgrelid = c.oid AND g.tgenabled IN ('O', 'R') AND g.tgtype & 4 <> 0
                    AND g.tgfoid <> 'pg_catalog."RI_FKey_check_ins"'::pg_catalog.regproc)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                  WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confmatchtype = 'f'
                    AND pg_catalog.cardinality(k.conkey) > 1)`;

/**
 * Writes seed rows with PostgreSQL's per-row foreign-key triggers off and checks each foreign key once for the
 * whole statement instead (one query per key, for its distinct values), which roughly halves the time COPY
 * takes on tables with foreign keys. It is only ever an
 * optimisation: on any doubt (a table that fires other triggers, a value left to a default, a missing key, no
 * right to switch triggers off) {@link BulkKeyCheck.write} reports `false` having changed nothing, and the caller
 * writes the rows the ordinary way, which gives PostgreSQL's own error for a bad row.
 */
export class BulkKeyCheck {
  /** Cleared at the first refusal to switch triggers off, so the load stops asking. */
  private permitted = true;

  private constructor(
    private readonly client: pg.ClientBase,
    private readonly checkable: ReadonlySet<string>,
  ) {}

  /** Looks up which of `tables` qualify, in one catalog query. */
  static async for(client: pg.ClientBase, tables: readonly CatalogTable[]): Promise<BulkKeyCheck> {
    const { rows } = await client.query<{ key: string }>(BULK_CHECKABLE_SQL, [
      tables.map((table) => table.schema),
      tables.map((table) => table.name),
    ]);
    return new BulkKeyCheck(client, new Set(rows.map((row) => row.key)));
  }

  /**
   * Runs `write` (which inserts `rows` into `table`) with triggers off and checks every foreign key of the rows:
   * keys to other tables before the write, keys to the table itself after it. Returns `true` when the rows are in and valid; `false` when the fast path does not apply or failed,
   * with the database as it was before the call.
   */
  async write(table: CatalogTable, rows: readonly TextRow[], write: () => Promise<void>): Promise<boolean> {
    if (!this.permitted || !this.checkable.has(table.key)) return false;
    const given = new Set(Object.keys(rows[0] ?? {}));
    const keys = table.foreignKeys.filter((key) => key.columns.some((name) => given.has(name)));
    // A key column left out takes its default, which the check below cannot see; NULL needs no check.
    const unchecked = table.foreignKeys
      .filter((key) => !keys.includes(key))
      .flatMap((key) => key.columns)
      .concat(keys.flatMap((key) => key.columns.filter((name) => !given.has(name))));
    const columns = new Map(table.columns.map((column) => [column.name, column]));
    if (unchecked.some((name) => !columns.get(name)!.nullable || columns.get(name)!.hasDefault)) return false;

    await this.client.query('SAVEPOINT pgtwin_bulk_keys');
    let written = false;
    try {
      written = await this.writeUnchecked(table, keys, rows, write);
    } catch (error) {
      // insufficient_privilege: SET session_replication_role needs a superuser or, on 15+, GRANT SET ON PARAMETER.
      if ((error as { code?: string }).code === '42501') this.permitted = false;
    }
    if (!written) await this.client.query('ROLLBACK TO SAVEPOINT pgtwin_bulk_keys');
    await this.client.query('RELEASE SAVEPOINT pgtwin_bulk_keys');
    return written;
  }

  private async writeUnchecked(
    table: CatalogTable,
    keys: readonly CatalogForeignKey[],
    rows: readonly TextRow[],
    write: () => Promise<void>,
  ): Promise<boolean> {
    const { rows: previous } = await this.client.query<{ role: string }>(
      `SELECT current_setting('session_replication_role') AS role, set_config('session_replication_role', 'replica', true)`,
    );
    // Keys to other tables are checked first, so a missing row costs no write; keys to the table itself may
    // point at rows of this very write.
    const own = (key: CatalogForeignKey) =>
      tableKey(key.references.schema, key.references.table) === table.key;
    for (const key of keys) if (!own(key) && !(await this.keyHolds(table, key, rows))) return false;
    await write();
    for (const key of keys) if (own(key) && !(await this.keyHolds(table, key, rows))) return false;
    await this.client.query(`SELECT set_config('session_replication_role', $1, true)`, [previous[0]!.role]);
    return true;
  }

  /**
   * Whether every distinct non-NULL value of `key` in `rows` has its referenced row, which it locks
   * `FOR KEY SHARE` as PostgreSQL's own check does, so the referenced rows cannot go before the load commits.
   */
  private async keyHolds(
    table: CatalogTable,
    key: CatalogForeignKey,
    rows: readonly TextRow[],
  ): Promise<boolean> {
    const columns = key.columns.map((name) => table.columns.find((column) => column.name === name)!);
    const aliases = columns.map((_, index) => `k${index + 1}`);
    const referenced = `${quoteIdent(key.references.schema)}.${quoteIdent(key.references.table)}`;
    const sql = `
      WITH wanted AS MATERIALIZED (
        SELECT ${columns.map((column, index) => `u.${aliases[index]}::${quoteIdent(column.udtSchema)}.${quoteIdent(column.udtName)} AS ${aliases[index]}`).join(', ')}
        FROM unnest(${columns.map((_, index) => `$${index + 1}::text[]`).join(', ')}) AS u(${aliases.join(', ')})),
      found AS MATERIALIZED (
        SELECT 1 FROM wanted JOIN ${referenced} p
          ON ${key.references.columns.map((name, index) => `p.${quoteIdent(name)} = wanted.${aliases[index]}`).join(' AND ')}
        FOR KEY SHARE OF p)
      SELECT (SELECT count(*) FROM wanted) = (SELECT count(*) FROM found) AS holds`;
    // Rows of a `$count` share their references: send each key once.
    const params = distinctKeys(key.columns, rows);
    if (params[0]!.length === 0) return true;
    const { rows: result } = await this.client.query<{ holds: boolean }>(sql, params);
    return result[0]!.holds;
  }
}

/** The distinct non-NULL values of `columns` in `rows`, one array per column. */
function distinctKeys(columns: readonly string[], rows: readonly TextRow[]): string[][] {
  if (columns.length === 1) {
    const [column] = columns as [string];
    const values = new Set<string>();
    for (const row of rows) {
      const value = row[column];
      if (value !== null && value !== undefined) values.add(value);
    }
    return [[...values]];
  }
  const tuples = new Map<string, string[]>();
  for (const row of rows) {
    const values = columns.map((name) => row[name] ?? null);
    if (values.every((value) => value !== null)) tuples.set(JSON.stringify(values), values as string[]);
  }
  return columns.map((_, index) => [...tuples.values()].map((values) => values[index]!));
}
