import {
  DEFAULT_SEED_MAX_COUNT,
  DEFAULT_SEED_MAX_ROWS,
  type SeedLimitsConfig,
} from '../config/pgtwin-config.js';
import { didYouMean } from '../util/closest-name.js';
import type { JsonPath } from './json-path.js';
import { qualifyTableName } from './qualify-table-name.js';
import type { SeedSource } from './seed-source.js';

/** A `{ "$ref": ... }` value: a row of the seed by `$key`, or a row already in the database by `where`. */
export interface SeedRef {
  /** The referenced table, `schema.table`. */
  readonly table: string;
  /** The `$key` of a row of the seed; absent for a `where` lookup. */
  readonly key?: string;
  /** Column values the one row already in the database must have. */
  readonly where?: Readonly<Record<string, unknown>>;
  /** The column whose value the reference becomes; the primary key when absent. */
  readonly column?: string;
  /** Where the reference is written. */
  readonly path: JsonPath;
}

/** One entry of a table's array: a row, or `$count` rows built alike. */
export interface SeedRowSpec {
  readonly path: JsonPath;
  readonly key?: string;
  readonly factory?: string;
  readonly count: number;
  /** Column values given as plain JSON. */
  readonly values: Readonly<Record<string, unknown>>;
  /** Column values given as references. */
  readonly refs: Readonly<Record<string, SeedRef>>;
}

/** The rows one file gives for one table. */
export interface SeedSection {
  /** `schema.table`, with a bare name qualified as `public`. */
  readonly table: string;
  readonly path: JsonPath;
  readonly rows: readonly SeedRowSpec[];
}

/** One seed file, checked for shape (not yet against the database). */
export interface SeedDocument {
  readonly source: SeedSource;
  readonly projectSchemas: readonly { name: string; path: JsonPath }[];
  readonly sections: readonly SeedSection[];
}

const PROJECT_SCHEMAS = '$projectSchemas';
const ROW_DIRECTIVES = ['$key', '$factory', '$count'];
const REF_PROPERTIES = ['$ref', 'column', 'where'];

/**
 * Parses one seed file and checks its shape: tables map to arrays of row objects, directives (`$key`,
 * `$factory`, `$count`, `$ref`) are well formed. Every problem is a `SeedError` pointing at its line.
 *
 * @example
 * const document = parseSeedDocument(new SeedSource('seed.json', '{ "clients": [{ "name": "Acme" }] }'));
 * document.sections[0].table // 'public.clients'
 */
export function parseSeedDocument(source: SeedSource, limits: SeedLimitsConfig = {}): SeedDocument {
  const maxCount = limits.maxCount ?? DEFAULT_SEED_MAX_COUNT;
  const root = source.parse();
  if (!isPlainObject(root)) {
    throw source.error(
      [],
      'A seed file must be a JSON object whose keys are tables ("schema.table") and whose values are arrays of rows.',
    );
  }
  const projectSchemas: { name: string; path: JsonPath }[] = [];
  const sections: SeedSection[] = [];
  for (const [name, value] of Object.entries(root)) {
    if (name === PROJECT_SCHEMAS) {
      projectSchemas.push(...parseProjectSchemas(source, value));
      continue;
    }
    if (name.startsWith('$')) {
      throw source.error(
        [name],
        `Unknown directive "${name}"${didYouMean(name, [PROJECT_SCHEMAS])}; top-level keys are tables or "${PROJECT_SCHEMAS}".`,
      );
    }
    if (!Array.isArray(value)) {
      throw source.error(
        [name],
        `The rows of ${name} must be an array of objects, e.g. "${name}": [{ "column": "value" }].`,
      );
    }
    sections.push({
      table: qualifyTableName(name),
      path: [name],
      rows: value.map((row, index) => parseRow(source, row, [name, index], maxCount)),
    });
  }
  return { source, projectSchemas, sections };
}

function parseProjectSchemas(source: SeedSource, value: unknown): { name: string; path: JsonPath }[] {
  if (!Array.isArray(value))
    throw source.error(
      [PROJECT_SCHEMAS],
      `"${PROJECT_SCHEMAS}" must be an array of schema names, e.g. ["project_demo"].`,
    );
  return value.map((name, index) => {
    if (typeof name !== 'string' || name === '')
      throw source.error([PROJECT_SCHEMAS, index], 'A project schema name must be a non-empty string.');
    return { name, path: [PROJECT_SCHEMAS, index] };
  });
}

function parseRow(source: SeedSource, row: unknown, path: JsonPath, maxCount: number): SeedRowSpec {
  if (!isPlainObject(row)) throw source.error(path, 'A row must be an object of column values.');
  const values: Record<string, unknown> = {};
  const refs: Record<string, SeedRef> = {};
  let key: string | undefined;
  let factory: string | undefined;
  let count = 1;
  for (const [name, value] of Object.entries(row)) {
    const at = [...path, name];
    if (name === '$key') {
      if (typeof value !== 'string' || value === '')
        throw source.error(at, '"$key" must be a non-empty string naming the row, e.g. "acme".');
      key = value;
    } else if (name === '$factory') {
      if (typeof value !== 'string' || value === '')
        throw source.error(at, '"$factory" must be the name of a factory, e.g. "project".');
      factory = value;
    } else if (name === '$count') {
      if (!Number.isSafeInteger(value) || (value as number) < 1)
        throw source.error(at, '"$count" must be a whole number of rows, 1 or more.');
      if ((value as number) > maxCount)
        throw source.error(
          at,
          `"$count": ${String(value)} is more than the ${maxCount.toLocaleString('en-US')} rows one entry may build. ` +
            `Ask for fewer, or raise the limit with seedLimits: { maxCount: ${String(value)} } in the pgtwin config (the loadSeedData option "limits" outside it).`,
        );
      count = value as number;
    } else if (name.startsWith('$')) {
      throw source.error(
        at,
        `Unknown row directive "${name}"${didYouMean(name, ROW_DIRECTIVES)}; rows accept ${ROW_DIRECTIVES.join(', ')}.`,
      );
    } else if (isPlainObject(value) && '$ref' in value) {
      refs[name] = parseRef(source, value, at);
    } else {
      values[name] = value;
    }
  }
  if (key !== undefined && count > 1) {
    throw source.error(
      [...path, '$key'],
      '"$key" names one row and cannot be combined with "$count"; give each keyed row its own entry.',
    );
  }
  return { path, key, factory, count, values, refs };
}

function parseRef(source: SeedSource, value: Record<string, unknown>, path: JsonPath): SeedRef {
  for (const name of Object.keys(value)) {
    if (!REF_PROPERTIES.includes(name)) {
      throw source.error(
        [...path, name],
        `Unknown property "${name}" in a reference${didYouMean(name, REF_PROPERTIES)}; a reference accepts ${REF_PROPERTIES.join(', ')}.`,
      );
    }
  }
  const { $ref: target, column, where } = value;
  if (typeof target !== 'string')
    throw source.error(
      [...path, '$ref'],
      '"$ref" must be a string: "schema.table.key", or "schema.table" with "where".',
    );
  if (column !== undefined && typeof column !== 'string')
    throw source.error([...path, 'column'], '"column" must be a column name.');
  const parts = target.split('.');
  if (where !== undefined) {
    if (!isPlainObject(where) || Object.keys(where).length === 0) {
      throw source.error(
        [...path, 'where'],
        '"where" must be an object of column values, e.g. { "name": "Article" }.',
      );
    }
    if (parts.length > 2 || parts.some((part) => part === '')) {
      throw source.error(
        [...path, '$ref'],
        `"${target}" is not a table; with "where", "$ref" names a table: "schema.table" (or "table" for public).`,
      );
    }
    return { table: qualifyTableName(target), where, column, path };
  }
  if (parts.length < 2 || parts.some((part) => part === '')) {
    throw source.error(
      [...path, '$ref'],
      `"${target}" names no row; write "schema.table.key" (or "table.key" for public), or name a table and add "where" to look a row up.`,
    );
  }
  const [schema, table, ...rest] = parts as [string, string, ...string[]];
  return rest.length === 0
    ? { table: `public.${schema}`, key: table, column, path }
    : { table: `${schema}.${table}`, key: rest.join('.'), column, path };
}

/**
 * Throws a {@link SeedError} at the entry that takes the documents past `limits.maxRows` rows in all
 * (`$count` expanded), before any row is built.
 */
export function checkSeedSize(documents: readonly SeedDocument[], limits: SeedLimitsConfig = {}): void {
  const maxRows = limits.maxRows ?? DEFAULT_SEED_MAX_ROWS;
  let rows = 0;
  for (const { source, sections } of documents) {
    for (const section of sections) {
      for (const row of section.rows) {
        rows += row.count;
        if (rows <= maxRows) continue;
        throw source.error(
          row.count > 1 ? [...row.path, '$count'] : row.path,
          `With this entry the seed files build more than the ${maxRows.toLocaleString('en-US')} rows one load may insert. ` +
            `Seed fewer rows, or raise the limit with seedLimits: { maxRows: ... } in the pgtwin config (the loadSeedData option "limits" outside it).`,
        );
      }
    }
  }
}

/** True for `{...}` JSON objects (not arrays, not null). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
