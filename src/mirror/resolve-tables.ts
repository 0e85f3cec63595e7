import type pg from 'pg';
import { MirrorError } from '../errors.js';
import { resolveSchemas } from '../structure/schema-selection.js';
import {
  queryTableCatalog,
  readTableNames,
  type CatalogTable,
  type TableName,
} from '../structure/table-catalog.js';
import { didYouMean } from '../util/closest-name.js';

/**
 * Every table of the connected database, read in the caller's current transaction (so inside a mirror
 * snapshot it matches the data read next). All schemas, because a table outside the mirrored ones may hold
 * a foreign key to them.
 */
export async function readCatalog(client: pg.ClientBase): Promise<CatalogTable[]> {
  return queryTableCatalog(client, await resolveSchemas(client, { schemas: ['*'] }));
}

/**
 * The catalog entries of just `names` (`schema.table`; a bare name means `public`), in the order given, read
 * in the caller's current transaction: every table is listed by name, but only these are described, so the
 * cost does not grow with the number of other tables (project schemas). An unknown name throws a
 * {@link MirrorError} naming it and the closest existing table.
 */
export async function readTables(
  client: pg.ClientBase,
  names: readonly string[],
  where: string,
): Promise<CatalogTable[]> {
  const keys = resolveTables(await readTableNames(client, { schemas: ['*'] }), names, where).map(
    (table) => table.key,
  );
  const schemas = [...new Set(keys.map((key) => key.slice(0, key.indexOf('.'))))];
  const byKey = new Map((await queryTableCatalog(client, schemas, keys)).map((table) => [table.key, table]));
  return keys.map((key) => byKey.get(key)!);
}

/**
 * The entries of `names` (`schema.table`; a bare name means `public`) among `catalog`, in the order given.
 * An unknown name throws a {@link MirrorError} naming it and the closest existing table.
 */
export function resolveTables<T extends TableName>(
  catalog: readonly T[],
  names: readonly string[],
  where: string,
): T[] {
  const byKey = new Map(catalog.map((table) => [table.key, table]));
  return [...new Set(names.map((name) => (name.includes('.') ? name : `public.${name}`)))].map((name) => {
    const table = byKey.get(name);
    if (table === undefined) {
      throw new MirrorError(
        name,
        `Table ${name} does not exist in the ${where}${didYouMean(name, byKey.keys())}. Check the table list (mirror.full) for a typo, or create the table there first.`,
      );
    }
    return table;
  });
}
