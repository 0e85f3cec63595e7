import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { matchSchemas } from '../structure/schema-selection.js';
import {
  queryTableCatalog,
  quoteQualified,
  readTableNames,
  tableKey,
  type CatalogTable,
  type TableName,
} from '../structure/table-catalog.js';
import { requestedProjectSchemas } from './create-project-schemas.js';
import { FactoryRegistry, type UserFactories } from './factory-registry.js';
import { resolveSeedFiles } from './resolve-seed-files.js';
import type { SeedLimitsConfig } from '../config/pgtwin-config.js';
import { checkSeedSize, parseSeedDocument, type SeedDocument } from './seed-document.js';
import { planSeed, type SeedPlan } from './seed-plan.js';
import { SeedSource } from './seed-source.js';

/** Options of {@link planFromDatabase}. */
export interface PlanFromDatabaseOptions {
  /** The user's factories, overriding the automatic ones of their tables. */
  factories?: UserFactories;
  /** Pattern of the project schemas (`*` matches any characters). */
  projectSchemas: string;
  /**
   * Plan the test-only project schemas `$projectSchemas` asks for, and that do not exist, with the structure
   * of the first existing project schema, as the loader would create them: for a check against production.
   * @default false
   */
  standIns?: boolean;
  /** Called after each phase (`catalog`, `build`), for timings. */
  phase?: (name: string) => void;
}

/**
 * Reads and parses the seed files `seeds` names; relative paths (and the file names in messages) are taken
 * from `rootDir`. Every mistake in a file, and a seed over `limits`, is a `SeedError` naming it.
 */
export async function readSeedDocuments(
  seeds: string | readonly string[],
  rootDir = process.cwd(),
  limits: SeedLimitsConfig = {},
): Promise<{ files: string[]; documents: SeedDocument[] }> {
  const files = await resolveSeedFiles(seeds, rootDir);
  const documents: SeedDocument[] = [];
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    documents.push(parseSeedDocument(new SeedSource(path.relative(rootDir, file) || file, text), limits));
  }
  checkSeedSize(documents, limits);
  return { files, documents };
}

/**
 * Plans seed documents against the database `client` is connected to, inside the caller's transaction: the
 * columns and keys of just the tables the files name (as sections or `$ref`s), which is all a plan reads, and
 * the names of every table of `public` and the project schemas, which factory names and suggestions need. So
 * a seed costs the same however many project schemas the database has.
 */
export async function planFromDatabase(
  client: pg.ClientBase,
  documents: readonly SeedDocument[],
  options: PlanFromDatabaseOptions,
): Promise<SeedPlan> {
  const seeded = documents.flatMap((document) =>
    document.sections.map((section) => section.table.split('.')[0]!),
  );
  let names = await readTableNames(client, { schemas: ['public', options.projectSchemas, ...seeded] });
  const standIns = options.standIns ? standInSchemas(documents, names, options.projectSchemas) : new Map();
  for (const [schema, template] of standIns) {
    names = names.concat(
      names
        .filter((table) => table.schema === template)
        .map((table) => ({ schema, name: table.name, key: tableKey(schema, table.name) })),
    );
  }
  const existing = new Set(names.map((table) => table.key));
  const named = new Set<string>();
  for (const { sections } of documents) {
    for (const section of sections) {
      named.add(section.table);
      for (const row of section.rows) for (const ref of Object.values(row.refs)) named.add(ref.table);
    }
  }
  const read = await readCatalog(
    client,
    [...named].filter((key) => existing.has(key)).map((key) => withSchema(key, standIns)),
  );
  const catalog = read.concat(
    [...standIns].flatMap(([schema, template]) =>
      read
        .filter((table) => table.schema === template && named.has(tableKey(schema, table.name)))
        .map((table) => renameSchema(table, template, schema)),
    ),
  );
  options.phase?.('catalog');
  const plan = planSeed(documents, catalog, new FactoryRegistry(names, options.factories));
  options.phase?.('build');
  return plan;
}

/** Each requested project schema that does not exist, with the existing one the loader would copy. */
function standInSchemas(
  documents: readonly SeedDocument[],
  names: readonly TableName[],
  pattern: string,
): Map<string, string> {
  const schemas = new Set(names.map((table) => table.schema));
  const missing = requestedProjectSchemas(documents, pattern)
    .map((entry) => entry.name)
    .filter((name) => !schemas.has(name));
  const template = matchSchemas(schemas, { schemas: [pattern] })[0];
  return new Map(template === undefined ? [] : missing.map((name) => [name, template]));
}

/** The key of the table to read for `key`: a stand-in schema's table is read from its template. */
function withSchema(key: string, standIns: ReadonlyMap<string, string>): string {
  const schema = key.slice(0, key.indexOf('.'));
  const template = standIns.get(schema);
  return template === undefined ? key : tableKey(template, key.slice(schema.length + 1));
}

function renameSchema(table: CatalogTable, from: string, to: string): CatalogTable {
  const moved = (schema: string) => (schema === from ? to : schema);
  return {
    ...table,
    schema: to,
    key: tableKey(to, table.name),
    qualifiedName: quoteQualified(to, table.name),
    foreignKeys: table.foreignKeys.map((key) => ({
      ...key,
      references: { ...key.references, schema: moved(key.references.schema) },
    })),
    partitionOf: table.partitionOf && { ...table.partitionOf, schema: moved(table.partitionOf.schema) },
  };
}

/**
 * The catalog of some tables (`schema.table`), read inside the caller's transaction with the empty
 * `search_path` the catalog query expects; the caller's `search_path` is restored after, since the inserts'
 * triggers may rely on it.
 */
async function readCatalog(client: pg.ClientBase, tables: readonly string[]): Promise<CatalogTable[]> {
  if (tables.length === 0) return [];
  const { rows } = await client.query<{ previous: string }>(
    `SELECT current_setting('search_path') AS previous, set_config('search_path', '', true)`,
  );
  try {
    const schemas = [...new Set(tables.map((key) => key.slice(0, key.indexOf('.'))))];
    return await queryTableCatalog(client, schemas, tables);
  } finally {
    await client.query(`SELECT set_config('search_path', $1, true)`, [rows[0]!.previous]);
  }
}
