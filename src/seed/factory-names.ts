import type { CatalogTable } from '../structure/table-catalog.js';

/**
 * The names a table's factory answers to, in `$factory` and on the object {@link createFactories} returns:
 * the table name as is (`projects`), and its singular (`project`) when it differs; both prefixed with the
 * schema for tables outside `public` (`project_alpha.content_entries`, `project_alpha.content_entry`).
 *
 * @example
 * factoryNames({ schema: 'public', name: 'object_models' }) // ['object_models', 'object_model']
 */
export function factoryNames(table: Pick<CatalogTable, 'schema' | 'name'>): string[] {
  const prefix = table.schema === 'public' ? '' : `${table.schema}.`;
  const plain = singular(table.name);
  return plain === table.name ? [prefix + table.name] : [prefix + table.name, prefix + plain];
}

/** English singular of a plural table name's last word: `entries` → `entry`, `statuses` → `status`. */
export function singular(name: string): string {
  if (/ies$/.test(name)) return name.replace(/ies$/, 'y');
  if (/(ss|x|ch|sh|us)es$/.test(name)) return name.replace(/es$/, '');
  if (/[^su]s$/.test(name)) return name.slice(0, -1);
  return name;
}
