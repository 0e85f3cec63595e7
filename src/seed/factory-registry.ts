import type { Factory } from 'fishery';
import { ConfigError } from '../errors.js';
import type { CatalogTable, TableName } from '../structure/table-catalog.js';
import { didYouMean } from '../util/closest-name.js';
import { automaticFactory, automaticRows, type Row } from './automatic-factory.js';
import { factoryNames, singular } from './factory-names.js';

/** Any fishery factory, as a user's factories module exports them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFactory = Factory<any, any, any, any>;

/** The user's factories by name: `{ project: Factory.define<Project>(...) }`. */
export type UserFactories = Readonly<Record<string, AnyFactory>>;

/** Options of {@link FactoryRegistry}. */
export interface FactoryRegistryOptions {
  /**
   * First value of each factory's `sequence`.
   * @default DEFAULT_SEQUENCE_START
   */
  sequenceStart?: number;
}

export const DEFAULT_SEQUENCE_START = 1;

/**
 * One factory per table: the user's when one is registered under a name of the table (see {@link factoryNames};
 * a bare name also covers the same-named table of every project schema), else the automatic one. Each factory
 * is a copy with a sequence of its own starting at `sequenceStart`, so every registry numbers its rows alike:
 * reloading a seed gives the same values, and the user's factories are never changed.
 *
 * @example
 * ```ts
 * const registry = new FactoryRegistry(catalog, { project: projectFactory });
 * registry.forTable(projectsTable).build({ client_id: 1 });
 * ```
 */
export class FactoryRegistry {
  private readonly userByTable = new Map<string, { name: string; factory: AnyFactory }>();
  private readonly factories = new Map<string, Factory<Row>>();
  private readonly tableByName = new Map<string, TableName>();
  private readonly automatic = new Map<string, { build: ReturnType<typeof automaticRows>; next: number }>();
  private readonly sequenceStart: number;

  /**
   * `tables`: every table a factory name may refer to, by name. Rows are built only for the tables passed to
   * {@link forTable}, which must carry their columns.
   */
  constructor(
    readonly tables: readonly TableName[],
    userFactories: UserFactories = {},
    options: FactoryRegistryOptions = {},
  ) {
    this.sequenceStart = options.sequenceStart ?? DEFAULT_SEQUENCE_START;
    for (const table of tables) for (const name of factoryNames(table)) this.tableByName.set(name, table);
    for (const [name, factory] of Object.entries(userFactories)) {
      const tables = this.tablesNamed(name);
      if (tables.length === 0) {
        // `public.projects` is the likeliest slip, and too far from `projects` for a suggestion by spelling.
        const bare = name.startsWith('public.') ? name.slice('public.'.length) : undefined;
        const hint =
          bare !== undefined && this.tableByName.has(bare)
            ? ` (did you mean "${bare}"? tables of public go by their bare name)`
            : didYouMean(name, this.tableByName.keys());
        throw new ConfigError(
          'factories',
          `The factory "${name}" matches no table${hint}. Name each factory after ` +
            `its table: "projects" or "project" for public.projects, "schema.table" elsewhere.`,
        );
      }
      for (const table of tables) {
        const previous = this.userByTable.get(table.key);
        if (previous && previous.name.includes('.') === name.includes('.')) {
          throw new ConfigError(
            'factories',
            `The factories "${previous.name}" and "${name}" both build rows for ${table.key}; export only one of them.`,
          );
        }
        // A schema-qualified name is more specific than a bare one and wins over it.
        if (!previous || name.includes('.')) this.userByTable.set(table.key, { name, factory });
      }
    }
  }

  /** Every name a factory answers to: each table's names and the user's. */
  names(): string[] {
    return [
      ...new Set([...this.tableByName.keys(), ...[...this.userByTable.values()].map((entry) => entry.name)]),
    ];
  }

  /** The table a factory name builds rows for, when `name` is one of `table`'s or names a table. */
  tableFor(name: string, table?: TableName): TableName | undefined {
    if (table && this.answersTo(table, name)) return table;
    return this.tableByName.get(name) ?? this.tablesNamed(name)[0];
  }

  /** The factory of `table`: the user's, else the automatic one. */
  forTable(table: CatalogTable): Factory<Row> {
    let factory = this.factories.get(table.key);
    if (!factory) {
      const user = this.userByTable.get(table.key);
      factory = withOwnSequence(
        user ? (user.factory as Factory<Row>) : automaticFactory(table),
        this.sequenceStart,
      );
      this.factories.set(table.key, factory);
    }
    return factory;
  }

  /** Whether `table` builds with its automatic factory (no user factory is registered for it). */
  isAutomatic(table: TableName): boolean {
    return !this.userByTable.has(table.key);
  }

  /**
   * The next row of `table`'s automatic factory, less the columns `given` says the caller sets: what
   * `forTable(table).build(params)` gives less `params`, numbered by a sequence of its own (seeds build every
   * row of a table one way or the other, never both).
   */
  buildAutomatic(table: CatalogTable, given: (name: string) => boolean): Row {
    let entry = this.automatic.get(table.key);
    if (!entry)
      this.automatic.set(table.key, (entry = { build: automaticRows(table), next: this.sequenceStart }));
    return entry.build(entry.next++, given);
  }

  private answersTo(table: TableName, name: string): boolean {
    return (
      factoryNames(table).includes(name) ||
      this.userByTable.get(table.key)?.name === name ||
      this.bareMatch(table, name)
    );
  }

  /** A bare name of a project schema's table: `content_entry` for `project_alpha.content_entries`. */
  private bareMatch(table: TableName, name: string): boolean {
    return !name.includes('.') && (table.name === name || singular(table.name) === name);
  }

  /** The tables a factory name covers: the one it names, or the same-named table of each project schema. */
  tablesNamed(name: string): TableName[] {
    const exact = this.tableByName.get(name);
    return exact
      ? [exact]
      : this.tables.filter((table) => table.schema !== 'public' && this.bareMatch(table, name));
  }
}

/**
 * A copy of `factory` whose sequence starts at `start` and is its own. fishery shares one counter between a
 * factory and all its copies (`params`, `onCreate`...); giving the copy a fresh counter keeps loads
 * reproducible and leaves the user's factory untouched.
 */
function withOwnSequence<F extends AnyFactory>(factory: F, start: number): F {
  const copy = factory.params({}) as F;
  const internals = copy as unknown as { id?: { value: number } };
  if (typeof internals.id === 'object') internals.id = { value: start };
  return copy;
}
