import type pg from 'pg';
import { applyStructure } from '../structure/apply-structure.js';
import { readStructure } from '../structure/read-structure.js';
import { matchSchemas } from '../structure/schema-selection.js';
import type { StructureSnapshot } from '../structure/structure-snapshot.js';
import { quoteIdent } from '../structure/table-catalog.js';
import type { JsonPath } from './json-path.js';
import type { SeedDocument } from './seed-document.js';
import type { SeedSource } from './seed-source.js';

/**
 * Creates the `$projectSchemas` of the documents that do not exist yet, each a copy of the structure of an
 * existing project schema (the first matching `pattern` in name order, the template). Returns the schemas it
 * created, so a failed load can drop them again. Runs outside the seed's transaction, since the structure
 * reader and applier use transactions of their own; with `inTransaction` it refuses to create any.
 *
 * @example
 * ```ts
 * await createProjectSchemas(client, documents, 'project_*'); // ['project_demo'], copied from project_alpha
 * ```
 */
export async function createProjectSchemas(
  client: pg.ClientBase,
  documents: readonly SeedDocument[],
  pattern: string,
  inTransaction = false,
): Promise<string[]> {
  const requested = requestedProjectSchemas(documents, pattern);
  if (requested.length === 0) return [];
  const { rows } = await client.query<{ nspname: string }>('SELECT nspname FROM pg_catalog.pg_namespace');
  const existing = new Set(rows.map((row) => row.nspname));
  const missing = new Map<string, (typeof requested)[number]>();
  for (const entry of requested) if (!existing.has(entry.name)) missing.set(entry.name, entry);
  if (missing.size === 0) return [];
  const [first] = missing.values();
  if (inTransaction) {
    throw first!.source.error(
      first!.path,
      `Cannot create the project schema "${first!.name}" inside the caller's transaction; load this seed outside one (as resetTestDatabase does).`,
    );
  }
  const template = matchSchemas(existing, { schemas: [pattern] }).find((name) => !missing.has(name));
  if (template === undefined) {
    throw first!.source.error(
      first!.path,
      `No project schema matching ${pattern} exists to copy "${first!.name}" from; clone the production structure into the test database first.`,
    );
  }
  const snapshot = await readStructure(client, { schemas: [template] });
  const created: string[] = [];
  try {
    for (const name of missing.keys()) {
      await applyStructure(client, renameSchema(snapshot, template, name));
      created.push(name);
    }
  } catch (error) {
    await dropSchemas(client, created);
    throw error;
  }
  return created;
}

/**
 * The project schemas the documents' `$projectSchemas` ask for, each checked to match `pattern`: a name that
 * does not is a `SeedError` at its place in the file.
 */
export function requestedProjectSchemas(
  documents: readonly SeedDocument[],
  pattern: string,
): { name: string; path: JsonPath; source: SeedSource }[] {
  const requested = documents.flatMap(({ source, projectSchemas }) =>
    projectSchemas.map((entry) => ({ source, ...entry })),
  );
  for (const entry of requested) {
    if (matchSchemas([entry.name], { schemas: [pattern] }).length === 0) {
      throw entry.source.error(
        entry.path,
        `"${entry.name}" does not match the project schema pattern ${pattern}; rename it or change "projectSchemas" in the config.`,
      );
    }
  }
  return requested;
}

/** Drops schemas {@link createProjectSchemas} created, when the load they were for failed. */
export async function dropSchemas(client: pg.ClientBase, schemas: readonly string[]): Promise<void> {
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
}

/**
 * A copy of a one-schema snapshot with the schema renamed. The definitions are SQL with every name
 * schema-qualified, so replacing the schema identifier (bare or quoted) where it stands alone is enough.
 */
function renameSchema(snapshot: StructureSnapshot, from: string, to: string): StructureSnapshot {
  const bare = new RegExp(`(?<![\\w$"])${from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w$"])`, 'g');
  const quoted = quoteIdent(from);
  const target = /^[a-z_][a-z0-9_$]*$/.test(to) ? to : quoteIdent(to);
  const rename = (text: string) => text.replaceAll(quoted, target).replace(bare, target);
  return {
    ...snapshot,
    schemas: [to],
    objects: snapshot.objects.map((object) => ({
      ...object,
      schema: to,
      name: rename(object.name),
      key: rename(object.key),
      definition: rename(object.definition),
    })),
    tables: snapshot.tables.map((table) => ({
      ...table,
      schema: to,
      key: `${to}.${table.name}`,
      qualifiedName: `${quoteIdent(to)}.${quoteIdent(table.name)}`,
    })),
  };
}
