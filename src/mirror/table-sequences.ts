import type pg from 'pg';
import { MirrorError } from '../errors.js';
import type { CatalogTable } from '../structure/table-catalog.js';

/**
 * The state of the sequence a column draws its values from (serial, identity, or any `nextval` default),
 * as `setval(sequence, lastValue, isCalled)` takes it.
 */
export interface SequenceValue {
  column: string;
  /** `bigint` as decimal text. */
  lastValue: string;
  isCalled: boolean;
}

/** The sequences `table`'s columns draw from, with their current values. */
export async function readTableSequences(
  client: pg.ClientBase,
  table: CatalogTable,
): Promise<SequenceValue[]> {
  const values: SequenceValue[] = [];
  for (const { column, sequence } of await columnSequences(client, table)) {
    const { rows } = await client.query<{ last_value: string; is_called: boolean }>(
      `SELECT last_value, is_called FROM ${sequence}`,
    );
    values.push({ column, lastValue: rows[0]!.last_value, isCalled: rows[0]!.is_called });
  }
  return values;
}

/**
 * Sets the sequences `table`'s columns draw from to `values`. Plain `setval` survives a rollback; `ALTER SEQUENCE ... RESTART`
 * first gives the sequence new storage inside the transaction, so the `setval` after it rolls back with it.
 */
export async function writeTableSequences(
  client: pg.ClientBase,
  table: CatalogTable,
  values: readonly SequenceValue[],
): Promise<void> {
  const owned = new Map((await columnSequences(client, table)).map((s) => [s.column, s.sequence]));
  for (const value of values) {
    const sequence = owned.get(value.column);
    if (sequence === undefined) {
      throw new MirrorError(
        table.key,
        `Column ${table.key}.${value.column} draws from a sequence in the source but not in the target. Rebuild the target's structure from the source before mirroring.`,
      );
    }
    await client.query(`ALTER SEQUENCE ${sequence} RESTART`);
    await client.query(`SELECT pg_catalog.setval($1::regclass, $2::bigint, $3)`, [
      sequence,
      value.lastValue,
      value.isCalled,
    ]);
  }
}

/**
 * The sequence each of `table`'s columns draws from, with the range of values `setval` accepts for it
 * (`MINVALUE` to `MAXVALUE`, as decimal text), keyed by column.
 */
export async function sequenceBounds(
  client: pg.ClientBase,
  table: CatalogTable,
): Promise<Map<string, { sequence: string; min: string; max: string }>> {
  const bounds = new Map<string, { sequence: string; min: string; max: string }>();
  for (const { column, sequence } of await columnSequences(client, table)) {
    const { rows } = await client.query<{ min: string; max: string }>(
      `SELECT seqmin::text AS min, seqmax::text AS max FROM pg_catalog.pg_sequence WHERE seqrelid = $1::regclass`,
      [sequence],
    );
    bounds.set(column, { sequence, min: rows[0]!.min, max: rows[0]!.max });
  }
  return bounds;
}

// A default's text names its sequence (`nextval('public.revision_seq'::regclass)`, qualified because the
// catalog is read without the table's schema on the search path); an identity column's sequence is only
// known to pg_get_serial_sequence.
async function columnSequences(
  client: pg.ClientBase,
  table: CatalogTable,
): Promise<{ column: string; sequence: string }[]> {
  const found: { column: string; sequence: string }[] = [];
  for (const column of table.columns) {
    const match = /nextval\('((?:[^']|'')+)'::regclass\)/.exec(column.default ?? '');
    if (match) found.push({ column: column.name, sequence: match[1]!.replace(/''/g, "'") });
  }
  const identities = table.columns.filter((column) => column.identity !== null).map((column) => column.name);
  if (identities.length > 0) {
    const { rows } = await client.query<{ column: string; sequence: string }>(
      `SELECT c AS column, pg_catalog.pg_get_serial_sequence($1, c) AS sequence FROM unnest($2::text[]) AS c`,
      [table.qualifiedName, identities],
    );
    found.push(...rows);
  }
  return found;
}
