import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { MirrorError } from '../errors.js';
import { sortTablesByForeignKeys } from '../structure/sort-tables-by-foreign-keys.js';
import { quoteIdent, type CatalogForeignKey, type CatalogTable } from '../structure/table-catalog.js';
import { readCatalog, resolveTables } from './resolve-tables.js';
import { writeTableSequences, type SequenceValue } from './table-sequences.js';

/** The rows of one table to load, as COPY text, and the state of its sequences. */
export interface TableLoad {
  /** `schema.table`. */
  table: string;
  /** The columns the COPY text holds, in order: every column except generated ones. */
  columns: readonly string[];
  sequences: readonly SequenceValue[];
  /** Opens the COPY text stream; called once, when the table's turn comes. */
  open(): Readable;
}

/**
 * Replaces the rows of the `loads` tables in the target, inside the caller's transaction (which must have
 * the mirror session settings): empties them, streams each one's COPY text in foreign-key order, sets their
 * sequences, then checks the foreign keys that cross the border of the set. Returns the rows loaded per table.
 *
 * Triggers are off for the load (`session_replication_role = replica`), so copied values stay as they were
 * and no cascade fires. That also switches off foreign key checks, which is why keys between a loaded table
 * and any other table are verified explicitly at the end: test rows of a structure-only table that
 * reference a mirrored row are kept as they are, and the load is refused if the new data leaves them
 * (or the loaded rows) pointing nowhere. Never TRUNCATE ... CASCADE, which would silently empty them.
 */
export async function replaceTableData(
  target: pg.ClientBase,
  loads: readonly TableLoad[],
): Promise<Map<string, number>> {
  const catalog = await readCatalog(target);
  const tables = sortTablesByForeignKeys(
    resolveTables(
      catalog,
      loads.map((load) => load.table),
      'target database',
    ),
  ).tables;
  const loadOf = new Map(
    loads.map((load) => [load.table.includes('.') ? load.table : `public.${load.table}`, load]),
  );
  const inSet = new Set(tables.map((table) => table.key));
  const crossing = crossingForeignKeys(catalog, inSet);

  await disableTriggers(target, tables[0]?.key ?? '');
  const referencedFromOutside = crossing.some(({ table }) => !inSet.has(table.key));
  if (!referencedFromOutside) {
    if (tables.length > 0) await target.query(`TRUNCATE ${tables.map((t) => t.qualifiedName).join(', ')}`);
  } else {
    // TRUNCATE refuses tables other tables reference; DELETE with triggers off leaves those rows alone.
    for (const table of [...tables].reverse()) await target.query(`DELETE FROM ${table.qualifiedName}`);
  }

  const rowCounts = new Map<string, number>();
  for (const table of tables) {
    const load = loadOf.get(table.key)!;
    const copyIn = copyStreams.from(
      `COPY ${table.qualifiedName} (${load.columns.map(quoteIdent).join(', ')}) FROM STDIN`,
    );
    try {
      await pipeline(load.open(), target.query(copyIn));
    } catch (error) {
      throw new MirrorError(
        table.key,
        `Copying the rows of ${table.key} failed: ${(error as Error).message}. The target was left as it was; fix the cause and mirror again.`,
        { cause: error },
      );
    }
    rowCounts.set(table.key, copyIn.rowCount);
    await writeTableSequences(target, table, load.sequences);
  }

  await verifyForeignKeys(target, catalog, crossing, inSet);
  return rowCounts;
}

/**
 * Checks, as one query per key, that the foreign keys of `catalog` between a table of `loaded` (`schema.table`)
 * and a table outside it hold in the target, where they are not enforced (not created yet, or triggers off
 * during the load); a {@link MirrorError} says which side to change otherwise.
 */
export async function verifyCrossingForeignKeys(
  target: pg.ClientBase,
  catalog: readonly CatalogTable[],
  loaded: ReadonlySet<string>,
): Promise<void> {
  await verifyForeignKeys(target, catalog, crossingForeignKeys(catalog, loaded), loaded);
}

function crossingForeignKeys(
  catalog: readonly CatalogTable[],
  inSet: ReadonlySet<string>,
): { table: CatalogTable; fk: CatalogForeignKey }[] {
  return catalog.flatMap((table) =>
    table.foreignKeys
      .filter((fk) => inSet.has(table.key) !== inSet.has(`${fk.references.schema}.${fk.references.table}`))
      .map((fk) => ({ table, fk })),
  );
}

async function verifyForeignKeys(
  target: pg.ClientBase,
  catalog: readonly CatalogTable[],
  crossing: readonly { table: CatalogTable; fk: CatalogForeignKey }[],
  inSet: ReadonlySet<string>,
): Promise<void> {
  for (const { table, fk } of crossing) await verifyForeignKey(target, catalog, table, fk, inSet);
}

async function disableTriggers(target: pg.ClientBase, table: string): Promise<void> {
  try {
    await target.query('SET LOCAL session_replication_role = replica');
  } catch (error) {
    throw new MirrorError(
      table,
      `Mirroring needs to switch triggers off on the target (SET session_replication_role), which its user may not do: ${(error as Error).message}. Connect as a superuser, or on PostgreSQL 15+ run GRANT SET ON PARAMETER session_replication_role TO <test user>.`,
      { cause: error },
    );
  }
}

async function verifyForeignKey(
  target: pg.ClientBase,
  catalog: readonly CatalogTable[],
  table: CatalogTable,
  fk: CatalogForeignKey,
  inSet: ReadonlySet<string>,
): Promise<void> {
  const referenced = catalog.find(
    (t) => t.schema === fk.references.schema && t.name === fk.references.table,
  )!;
  const child = fk.columns.map((c) => `c.${quoteIdent(c)}`);
  const match = fk.references.columns.map((c, i) => `p.${quoteIdent(c)} = ${child[i]}`).join(' AND ');
  const { rows } = await target.query<{ key: string }>(
    `SELECT json_build_object(${fk.columns.map((c, i) => `'${c.replace(/'/g, "''")}', ${child[i]}`).join(', ')})::text AS key
     FROM ${table.qualifiedName} AS c
     WHERE ${child.map((c) => `${c} IS NOT NULL`).join(' AND ')}
       AND NOT EXISTS (SELECT 1 FROM ${referenced.qualifiedName} AS p WHERE ${match})
     LIMIT 1`,
  );
  if (rows.length === 0) return;
  const mirrored = inSet.has(table.key) ? table.key : referenced.key;
  const advice = inSet.has(table.key)
    ? `Production rows of ${table.key} reference rows of ${referenced.key}, which is not mirrored. Mirror ${referenced.key} too, or drop the foreign key from the mirrored table.`
    : `Test rows of ${table.key} reference rows of ${referenced.key} that production does not have. Change those test rows (seeds) to reference rows that exist in production.`;
  throw new MirrorError(
    mirrored,
    `Mirroring ${mirrored} would break foreign key ${fk.name}: the row of ${table.key} with ${rows[0]!.key} has no match in ${referenced.key}. ${advice} The target was left as it was.`,
  );
}
