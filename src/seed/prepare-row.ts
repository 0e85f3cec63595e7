import { FactoryError } from '../errors.js';
import type { CatalogColumn, CatalogForeignKey, CatalogTable } from '../structure/table-catalog.js';
import { didYouMean } from '../util/closest-name.js';
import type { Row } from './automatic-factory.js';
import { factoryNames } from './factory-names.js';
import { toPostgresText, valueMismatch } from './postgres-text.js';

/**
 * Checks a built row against `table` and converts it to PostgreSQL text: every property must be a writable
 * column, and every NOT NULL foreign key without a default must be given (in `row` or in `pending`, columns
 * whose value comes later, such as seed references). pgtwin does not invent parent rows: a hidden parent
 * would make seeds and tests depend on rows nobody wrote, so the message says how to give one.
 *
 * @example
 * prepareRow(projects, { name: 'Demo', client_id: 1 }) // { name: 'Demo', client_id: '1' }
 */
export function prepareRow(
  table: CatalogTable,
  row: Row,
  pending: ReadonlySet<string> = new Set(),
): Record<string, string | null> {
  const text = rowText(table, row);
  const { columns, requiredForeignKeys } = shapeOf(table);
  for (const fk of requiredForeignKeys) {
    for (const name of fk.columns) {
      const column = columns.get(name)!;
      if (column.nullable || column.hasDefault || name in text || pending.has(name)) continue;
      const parent = `${fk.references.schema}.${fk.references.table}`;
      const factory = factoryNames({ schema: fk.references.schema, name: fk.references.table }).at(-1);
      throw new FactoryError(
        table.key,
        name,
        `${table.key}.${name} references ${parent} and needs a value; pgtwin does not create parent rows. ` +
          `In a seed give "${name}": { "$ref": "${parent}.<key>" }; in a test pass ${name} from a row you created, ` +
          `e.g. (await factories["${factory}"].create()).${fk.references.columns[fk.columns.indexOf(name)]}.`,
      );
    }
  }
  return text;
}

/**
 * {@link prepareRow} without the foreign-key check: the row's values as PostgreSQL text, every property
 * checked to be a writable column. For rows whose keys are known to be given, such as the automatic factory's.
 */
export function rowText(table: CatalogTable, row: Row): Record<string, string | null> {
  const { columns } = shapeOf(table);
  const text: Record<string, string | null> = {};
  for (const name in row) {
    const value = row[name];
    if (value === undefined) continue;
    const column = columns.get(name);
    if (!column) {
      throw new FactoryError(
        table.key,
        name,
        `${table.key} has no column "${name}"${didYouMean(name, columns.keys())}.`,
      );
    }
    if (column.generated !== null) {
      throw new FactoryError(
        table.key,
        name,
        `${table.key}.${name} is a generated column and cannot be given a value; leave it out.`,
      );
    }
    const mismatch = valueMismatch(value, column);
    if (mismatch !== undefined)
      throw new FactoryError(table.key, name, `${table.key}.${name} is ${mismatch}`);
    text[name] = toPostgresText(value, column);
  }
  return text;
}

interface TableShape {
  columns: ReadonlyMap<string, CatalogColumn>;
  requiredForeignKeys: readonly CatalogForeignKey[];
}

// Seeds prepare thousands of rows per table; look the table's shape up once.
const shapes = new WeakMap<CatalogTable, TableShape>();

function shapeOf(table: CatalogTable): TableShape {
  let shape = shapes.get(table);
  if (!shape) {
    const columns = new Map(table.columns.map((column) => [column.name, column]));
    const required = (name: string) => !columns.get(name)!.nullable && !columns.get(name)!.hasDefault;
    shape = { columns, requiredForeignKeys: table.foreignKeys.filter((fk) => fk.columns.some(required)) };
    shapes.set(table, shape);
  }
  return shape;
}
