import type { Queryable } from './queryable.js';

/**
 * Which schemas a structure operation covers: exact names or patterns where `*` matches any run of
 * characters (`project_*`). System schemas (`pg_*`, `information_schema`) never match.
 */
export interface SchemaSelection {
  /** Schema names or `*` patterns. @default DEFAULT_SCHEMA_SELECTION.schemas */
  schemas: readonly string[];
}

/** The public schema and one schema per content project. */
export const DEFAULT_SCHEMA_SELECTION: SchemaSelection = Object.freeze({
  schemas: Object.freeze(['public', 'project_*']),
});

/**
 * The names among `names` that `selection` covers, sorted.
 *
 * @example
 * matchSchemas(['public', 'project_alpha', 'audit'], { schemas: ['public', 'project_*'] })
 * // ['project_alpha', 'public']
 */
export function matchSchemas(names: Iterable<string>, selection: SchemaSelection): string[] {
  const patterns = selection.schemas.map(patternToRegExp);
  return [...new Set(names)]
    .filter((name) => !isSystemSchema(name) && patterns.some((pattern) => pattern.test(name)))
    .sort();
}

/** The existing schemas of the connected database that `selection` covers, sorted. */
export async function resolveSchemas(queryable: Queryable, selection: SchemaSelection): Promise<string[]> {
  const { rows } = await queryable.query<{ nspname: string }>('SELECT nspname FROM pg_catalog.pg_namespace');
  return matchSchemas(
    rows.map((row) => row.nspname),
    selection,
  );
}

function patternToRegExp(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}

function isSystemSchema(name: string): boolean {
  return name.startsWith('pg_') || name === 'information_schema';
}

/** The schemas a configuration covers: `public` and its project-schema pattern. */
export function selectionFromConfig(config: { projectSchemas: string }): SchemaSelection {
  return { schemas: ['public', config.projectSchemas] };
}
