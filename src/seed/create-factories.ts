import type { Factory } from 'fishery';
import type { Queryable } from '../structure/queryable.js';
import type { CatalogTable } from '../structure/table-catalog.js';
import type { Row } from './automatic-factory.js';
import { factoryNames } from './factory-names.js';
import { FactoryRegistry, type FactoryRegistryOptions, type UserFactories } from './factory-registry.js';
import { insertRows } from './insert-rows.js';
import { prepareRow } from './prepare-row.js';

/** Where `create` inserts: a client, or a function returning the current one (e.g. the test's transaction). */
export type FactoryConnection = Queryable | (() => Queryable);

/**
 * The factories of every table by name (see {@link factoryNames}), with the user's under their own names
 * and types. Each is a fishery factory whose `create` / `createList` insert through the connection.
 */
export type Factories<U extends UserFactories = UserFactories> = { readonly [K in keyof U]: U[K] } & {
  readonly [name: string]: Factory<Row> | undefined;
};

/**
 * Fishery factories for every table of `catalog`, ready for tests: `build` makes a row object, `create`
 * inserts it (`INSERT ... RETURNING *`) through `connection` and resolves to the row as stored, so it is rolled
 * back with the test's transaction. The user's factories override the automatic ones of their tables.
 *
 * @example
 * ```ts
 * const factories = createFactories(() => currentClient, catalog, { project: projectFactory });
 * const client = await factories.client!.create({ name: 'Acme' });
 * const project = await factories.project.create({ client_id: client.id });
 * ```
 */
export function createFactories<U extends UserFactories = Record<never, never>>(
  connection: FactoryConnection,
  catalog: readonly CatalogTable[],
  userFactories?: U,
  options: FactoryRegistryOptions = {},
): Factories<U> {
  const registry = new FactoryRegistry(catalog, userFactories, options);
  const connect = typeof connection === 'function' ? connection : () => connection;
  const factories: Record<string, Factory<Row>> = {};
  for (const table of catalog) {
    if (table.partitionOf !== null) continue; // rows go through the partitioned parent
    const factory = registry.forTable(table).onCreate(async (row) => {
      const [created] = await insertRows(connect(), table, [prepareRow(table, row)], '*');
      return created!;
    });
    for (const name of factoryNames(table)) factories[name] = factory;
  }
  // The user's own names too, when they cover one table (a bare name may cover every project schema's).
  for (const name of Object.keys(userFactories ?? {})) {
    const [table, ...others] = registry.tablesNamed(name);
    if (table && others.length === 0) factories[name] = factories[factoryNames(table)[0]!]!;
  }
  return Object.freeze(factories) as Factories<U>;
}
