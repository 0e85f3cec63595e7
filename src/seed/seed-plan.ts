import { FactoryError } from '../errors.js';
import type { CatalogTable } from '../structure/table-catalog.js';
import { didYouMean } from '../util/closest-name.js';
import type { FactoryRegistry } from './factory-registry.js';
import type { JsonPath } from './json-path.js';
import { valueMismatch } from './postgres-text.js';
import { prepareRow, rowText } from './prepare-row.js';
import type { SeedDocument, SeedRef, SeedRowSpec } from './seed-document.js';
import type { SeedSource } from './seed-source.js';

/** One row to insert, with where it was written and what it still waits for. */
export interface PlannedRow {
  readonly table: CatalogTable;
  readonly source: SeedSource;
  /** The row's entry in the file (shared by the rows of one `$count`). */
  readonly path: JsonPath;
  /** Which of its entry's rows this is (0-based), and how many the entry builds: see {@link rowOrdinal}. */
  readonly index: number;
  readonly count: number;
  /** The row's `$key`, if it has one. */
  readonly key: string | undefined;
  /** Column values as PostgreSQL text; referenced columns are null until filled in before the insert. */
  readonly text: Record<string, string | null>;
  /** Column values given as references (one array shared by the rows of a `$count`). */
  readonly refs: readonly (readonly [column: string, ref: SeedRef])[];
  /** The keyed rows its references point at, which must be inserted first (shared like `refs`). */
  readonly dependencies: readonly PlannedRow[];
  /** Columns of the inserted row that references read, once inserted. */
  inserted?: Record<string, unknown>;
}

/** What a reference was checked to point at. */
export interface ResolvedRef {
  readonly table: CatalogTable;
  /** The column whose value the reference takes. */
  readonly column: string;
  /** The row of the seed, for a `$key` reference. */
  readonly row?: PlannedRow;
}

/** Every row of the seed files, checked against the catalog, in file order. */
export interface SeedPlan {
  readonly rows: readonly PlannedRow[];
  readonly refs: ReadonlyMap<SeedRef, ResolvedRef>;
  /** Per table key, the columns references read from its inserted rows. */
  readonly returning: ReadonlyMap<string, readonly string[]>;
}

/**
 * Checks the seed documents against the tables and builds every row through its factory: unknown tables,
 * columns and factories, unresolved and cyclic `$ref`s are {@link SeedError}s pointing at the value. `catalog`
 * describes the tables the documents name (sections and `$ref` targets); the registry knows every table by
 * name, for factory names and suggestions. Nothing touches the database; `where` lookups are left for the
 * loader.
 *
 * @example
 * const plan = planSeed([parseSeedDocument(source)], catalog, new FactoryRegistry(catalog));
 * plan.rows.length // rows to insert, `$count` expanded
 */
export function planSeed(
  documents: readonly SeedDocument[],
  catalog: readonly CatalogTable[],
  registry: FactoryRegistry,
): SeedPlan {
  const tables = new Map(catalog.map((table) => [table.key, table]));
  // Suggestions for a wrong name come from every table, also those the catalog was not read for.
  const known = registry.tables.map((table) => table.key);
  const rows: PlannedRow[] = [];
  const entries: { source: SeedSource; refs: PlannedRow['refs']; dependencies: PlannedRow[] }[] = [];
  const keyed = new Map<string, PlannedRow>();
  for (const { source, sections } of documents) {
    for (const section of sections) {
      const table = tables.get(section.table);
      if (!table) {
        throw source.error(
          section.path,
          `There is no table ${section.table}${didYouMean(section.table, known)}. Fix the name or create the table.`,
        );
      }
      for (const spec of section.rows) {
        const dependencies: PlannedRow[] = [];
        const planned = planRows(source, table, spec, registry, dependencies);
        for (const row of planned) rows.push(row);
        entries.push({ source, refs: planned[0]!.refs, dependencies });
        if (spec.key === undefined) continue;
        const name = `${table.key}.${spec.key}`;
        const previous = keyed.get(name);
        if (previous) {
          throw source.error(
            [...spec.path, '$key'],
            `"$key": "${spec.key}" already names a row of ${table.key} (at ${previous.source.place(previous.path)}); keys must be unique per table.`,
          );
        }
        keyed.set(name, planned[0]!);
      }
    }
  }
  const refs = new Map<SeedRef, ResolvedRef>();
  const returning = new Map<string, Set<string>>();
  for (const { source, refs: entryRefs, dependencies } of entries) {
    for (const [, ref] of entryRefs) {
      const resolved = resolveRef(source, ref, tables, known, keyed);
      refs.set(ref, resolved);
      if (!resolved.row) continue;
      dependencies.push(resolved.row);
      const columns = returning.get(resolved.table.key) ?? new Set<string>();
      returning.set(resolved.table.key, columns.add(resolved.column));
    }
  }
  detectCycles(keyed.values());
  return { rows, refs, returning: new Map([...returning].map(([key, columns]) => [key, [...columns]])) };
}

function resolveRef(
  source: SeedSource,
  ref: SeedRef,
  tables: ReadonlyMap<string, CatalogTable>,
  known: readonly string[],
  keyed: ReadonlyMap<string, PlannedRow>,
): ResolvedRef {
  const table = tables.get(ref.table);
  if (!table) {
    throw source.error(
      [...ref.path, '$ref'],
      `"$ref" names no table ${ref.table}${didYouMean(ref.table, known)}.`,
    );
  }
  const names = table.columns.map((column) => column.name);
  for (const name of [...(ref.column === undefined ? [] : [ref.column]), ...Object.keys(ref.where ?? {})]) {
    if (!names.includes(name)) {
      const at = name === ref.column ? [...ref.path, 'column'] : [...ref.path, 'where', name];
      throw source.error(at, `${table.key} has no column "${name}"${didYouMean(name, names)}.`);
    }
  }
  for (const [name, value] of Object.entries(ref.where ?? {})) {
    const mismatch = valueMismatch(
      value,
      table.columns.find((candidate) => candidate.name === name)!,
    );
    if (mismatch !== undefined)
      throw source.error([...ref.path, 'where', name], `${table.key}.${name} is ${mismatch}`);
  }
  const column = ref.column ?? (table.primaryKey?.length === 1 ? table.primaryKey[0] : undefined);
  if (column === undefined) {
    throw source.error(
      ref.path,
      `${table.key} has no single-column primary key; add "column" to name the column the reference reads.`,
    );
  }
  if (ref.key === undefined) return { table, column };
  const row = keyed.get(`${ref.table}.${ref.key}`);
  if (!row) {
    const keys = [...keyed.keys()]
      .filter((name) => name.startsWith(`${ref.table}.`))
      .map((name) => name.slice(ref.table.length + 1));
    throw source.error(
      [...ref.path, '$ref'],
      `No row of ${ref.table} has "$key": "${ref.key}"${didYouMean(ref.key, keys)}. Add "$key": "${ref.key}" to that row or fix the reference.`,
    );
  }
  return { table, column, row };
}

function planRows(
  source: SeedSource,
  table: CatalogTable,
  spec: SeedRowSpec,
  registry: FactoryRegistry,
  dependencies: readonly PlannedRow[],
): PlannedRow[] {
  const columns = new Map(table.columns.map((column) => [column.name, column]));
  for (const name of [...Object.keys(spec.values), ...Object.keys(spec.refs)]) {
    const column = columns.get(name);
    if (!column)
      throw source.error(
        [...spec.path, name],
        `${table.key} has no column "${name}"${didYouMean(name, columns.keys())}.`,
      );
    if (column.generated !== null)
      throw source.error([...spec.path, name], `${table.key}.${name} is a generated column; leave it out.`);
  }
  if (spec.factory !== undefined) {
    const builds = registry.tableFor(spec.factory, table);
    if (!builds) {
      throw source.error(
        [...spec.path, '$factory'],
        `There is no factory "${spec.factory}"${didYouMean(spec.factory, registry.names())}. Register it in the factories module or use a table's name.`,
      );
    }
    if (builds.key !== table.key) {
      throw source.error(
        [...spec.path, '$factory'],
        `The factory "${spec.factory}" builds rows for ${builds.key}, not ${table.key}. Move the row or pick a factory of ${table.key}.`,
      );
    }
  }
  const factory = registry.forTable(table);
  const refs = Object.entries(spec.refs);
  const pending = new Set(Object.keys(spec.refs));
  const rows: PlannedRow[] = [];
  // The automatic factory never alters given values, so they are converted once for all the entry's rows;
  // a user's factory may derive anything from them and builds each row whole.
  const automatic = registry.isAutomatic(table);
  let givenText: Record<string, string | null> | undefined;
  const set = new Set([...pending, ...Object.keys(spec.values)]);
  const isSet = (name: string) => set.has(name);
  for (let index = 0; index < spec.count; index++) {
    try {
      let text: Record<string, string | null>;
      // Referenced columns hold null until the reference is resolved; a user's factory may have filled one,
      // and the reference wins.
      if (automatic) {
        // Checked once for the entry: the automatic factory never builds a foreign key.
        givenText ??= withNulls(prepareRow(table, spec.values, pending), pending);
        text = Object.assign(rowText(table, registry.buildAutomatic(table, isSet)), givenText);
      } else {
        text = withNulls(prepareRow(table, factory.build(spec.values), pending), pending);
      }
      rows.push({
        table,
        source,
        path: spec.path,
        index,
        count: spec.count,
        key: spec.key,
        text,
        refs,
        dependencies,
      });
    } catch (error) {
      if (!(error instanceof FactoryError)) throw error;
      const at = error.column in spec.values ? [...spec.path, error.column] : spec.path;
      throw source.error(at, `${error.message}${rowOrdinal(index, spec.count)}`);
    }
  }
  return rows;
}

function withNulls(
  text: Record<string, string | null>,
  names: ReadonlySet<string>,
): Record<string, string | null> {
  for (const name of names) text[name] = null;
  return text;
}

/** ` (row 3 of the 10 "$count" builds)` for messages about a row of a `$count` entry; empty for a single row. */
export function rowOrdinal(index: number, count: number): string {
  return count === 1 ? '' : ` (row ${index + 1} of the ${count} "$count" builds)`;
}

/** Rejects references that lead back to their own row, naming the loop. */
function detectCycles(keyed: Iterable<PlannedRow>): void {
  const state = new Map<PlannedRow, 'visiting' | 'done'>();
  const trail: PlannedRow[] = [];
  const visit = (row: PlannedRow): void => {
    state.set(row, 'visiting');
    trail.push(row);
    for (const dependency of row.dependencies) {
      if (state.get(dependency) === 'visiting') {
        const loop = [...trail.slice(trail.indexOf(dependency)), dependency];
        const names = loop.map((member) => `${member.table.key}.${member.key}`).join(' → ');
        const [first, second] = loop as [PlannedRow, PlannedRow];
        const ref = first.refs.find(
          ([, candidate]) => candidate.table === second.table.key && candidate.key === second.key,
        )!;
        throw first.source.error(
          [...ref[1].path, '$ref'],
          `Cyclic $ref: ${names}. Rows cannot reference each other in a loop; drop one reference and set it in a test or a later seed step.`,
        );
      }
      if (!state.has(dependency)) visit(dependency);
    }
    trail.pop();
    state.set(row, 'done');
  };
  // Only keyed rows can be referenced, so only they can be in a loop.
  for (const row of keyed) if (!state.has(row)) visit(row);
}
