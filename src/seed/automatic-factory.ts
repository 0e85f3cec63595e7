import { Factory } from 'fishery';
import { FactoryError } from '../errors.js';
import type { CatalogColumn, CatalogTable } from '../structure/table-catalog.js';

/** A row as factories build it: column name to value. */
export type Row = Record<string, unknown>;

const BASE_TIME = Date.UTC(2024, 0, 1);
const DAY = 86_400_000;

/**
 * The factory pgtwin derives from a table's columns. It fills exactly the columns an INSERT needs: NOT NULL,
 * without a default, not identity, not generated and not a foreign key (those must be given, since a made-up
 * id would reference nothing). Values suit the type; columns in a primary key or unique constraint vary with
 * fishery's `sequence`, so `buildList` gives distinct rows. Columns given as params are not generated.
 *
 * @example
 * ```ts
 * const projects = automaticFactory(catalog.find((t) => t.key === 'public.projects')!);
 * projects.build({ client_id: 1 }); // { client_id: 1, slug: 'slug-1', name: 'name-1' }
 * ```
 */
export function automaticFactory(table: CatalogTable): Factory<Row> {
  const build = automaticRows(table);
  return Factory.define<Row>(({ sequence, params }) => build(sequence, (name) => params[name] !== undefined));
}

/**
 * The automatic factory's generator without fishery around it: the row numbered `sequence`, less the columns
 * `given` says the caller sets. Seeds build thousands of rows through it, since fishery deep-copies its params
 * for every build.
 *
 * @example
 * automaticRows(projects)(1, (name) => name === 'name') // { slug: 'slug-1' }
 */
export function automaticRows(
  table: CatalogTable,
): (sequence: number, given: (name: string) => boolean) => Row {
  const foreignKeyColumns = new Set(table.foreignKeys.flatMap((fk) => fk.columns));
  const uniqueColumns = new Set([
    ...(table.primaryKey ?? []),
    ...table.uniqueKeys.flatMap((key) => key.columns),
  ]);
  // Chosen once per column, since seeds build thousands of rows.
  const generators = table.columns
    .filter(
      (column) =>
        !column.nullable &&
        !column.hasDefault &&
        column.generated === null &&
        !foreignKeyColumns.has(column.name),
    )
    .map((column) => ({
      name: column.name,
      value: valueGenerator(table, column, uniqueColumns.has(column.name)),
    }));
  return (sequence, given) => {
    const row: Row = {};
    for (const { name, value } of generators) if (!given(name)) row[name] = value(sequence);
    return row;
  };
}

type ValueGenerator = (sequence: number) => unknown;

/** Makes values of `column`'s type; distinct per sequence number when `unique`. */
function valueGenerator(table: CatalogTable, column: CatalogColumn, unique: boolean): ValueGenerator {
  if (column.isArray) return () => [];
  const labels = column.enumLabels;
  if (labels !== null) return (sequence) => labels[unique ? (sequence - 1) % labels.length : 0];
  const length = typeLength(column.type);
  switch (column.category) {
    case 'string': {
      const prefix = `${column.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-`;
      return (sequence) => fitted(prefix + sequence, length);
    }
    case 'numeric':
      return (sequence) => (unique ? sequence : 1);
    case 'boolean':
      return (sequence) => unique && sequence % 2 === 1;
    case 'datetime':
      return dateTimeGenerator(column.udtName, unique);
    case 'timespan':
      return (sequence) => `${unique ? sequence : 1} seconds`;
    case 'bitstring':
      return () => '0'.repeat(length ?? 1);
    case 'network':
      return column.udtName.startsWith('macaddr')
        ? () => '08:00:2b:01:02:03'
        : (sequence) => `10.0.${(sequence >> 8) & 255}.${sequence & 255}`;
    case 'range':
      return () => 'empty';
    case 'user':
      if (column.udtName === 'uuid')
        return (sequence) => `00000000-0000-4000-8000-${sequence.toString(16).padStart(12, '0')}`;
      if (column.udtName === 'json' || column.udtName === 'jsonb') return () => ({});
      if (column.udtName === 'bytea') return (sequence) => Buffer.from(`${column.name}-${sequence}`);
  }
  // Thrown when a row needs the value, so a seed or factory call that gives the column still works.
  return () => {
    throw new FactoryError(
      table.key,
      column.name,
      `pgtwin cannot make up a value of type ${column.type} for ${table.key}.${column.name} (NOT NULL, no default). ` +
        `Give "${column.name}" in the seed row or the factory call, or register a factory for ${table.key}.`,
    );
  };
}

function dateTimeGenerator(udtName: string, unique: boolean): ValueGenerator {
  if (udtName === 'date')
    return (sequence) => new Date(BASE_TIME + (unique ? sequence : 0) * DAY).toISOString().slice(0, 10);
  if (udtName.startsWith('time') && !udtName.startsWith('timestamp')) return () => '12:00:00';
  return (sequence) => new Date(BASE_TIME + (unique ? sequence : 0) * 1000);
}

/** `varchar(20)` → 20, `bit(8)` → 8; `undefined` without a length. */
function typeLength(type: string): number | undefined {
  const match = /^(?:character varying|character|bit varying|bit)\((\d+)\)$/.exec(type);
  return match ? Number(match[1]) : undefined;
}

/** Shortens `value` to `length`, keeping its end, where the sequence number is. */
function fitted(value: string, length: number | undefined): string {
  return length === undefined || value.length <= length ? value : value.slice(value.length - length);
}
