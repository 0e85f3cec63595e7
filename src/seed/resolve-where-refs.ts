import type pg from 'pg';
import { quoteIdent } from '../structure/table-catalog.js';
import { toPostgresText } from './postgres-text.js';
import type { SeedRef } from './seed-document.js';
import type { ResolvedRef, SeedPlan } from './seed-plan.js';
import type { SeedSource } from './seed-source.js';

/**
 * Looks up every `where` reference in the data already in the database (each distinct lookup once) and puts
 * the value found into its rows; `tables`, when given, limits the lookups to references into those tables.
 */
export async function resolveWhereRefs(
  client: pg.ClientBase,
  plan: SeedPlan,
  tables?: ReadonlySet<string>,
): Promise<void> {
  const found = new Map<string, string | null>();
  const lookups = new Map<SeedRef, string>();
  for (const row of plan.rows) {
    for (const [column, ref] of row.refs) {
      if (ref.where === undefined || (tables !== undefined && !tables.has(ref.table))) continue;
      let lookup = lookups.get(ref);
      if (lookup === undefined) {
        lookup = JSON.stringify([ref.table, ref.where, ref.column]);
        lookups.set(ref, lookup);
        if (!found.has(lookup))
          found.set(lookup, await findOne(client, row.source, ref, plan.refs.get(ref)!));
      }
      row.text[column] = found.get(lookup)!;
    }
  }
}

async function findOne(
  client: pg.ClientBase,
  source: SeedSource,
  ref: SeedRef,
  resolved: ResolvedRef,
): Promise<string | null> {
  const { table, column } = resolved;
  const conditions: string[] = [];
  const params: (string | null)[] = [];
  for (const [name, value] of Object.entries(ref.where!)) {
    const definition = table.columns.find((candidate) => candidate.name === name)!;
    const text = toPostgresText(value, definition);
    if (text === null) {
      conditions.push(`${quoteIdent(name)} IS NULL`);
      continue;
    }
    params.push(text);
    conditions.push(
      `${quoteIdent(name)} = $${params.length}::${quoteIdent(definition.udtSchema)}.${quoteIdent(definition.udtName)}`,
    );
  }
  const { rows } = await client.query<{ value: string | null }>(
    `SELECT ${quoteIdent(column)}::text AS value FROM ${table.qualifiedName} WHERE ${conditions.join(' AND ')} LIMIT 2`,
    params,
  );
  const where = JSON.stringify(ref.where);
  if (rows.length === 0) {
    throw source.error(
      [...ref.path, 'where'],
      `No row of ${table.key} matches ${where}. "where" looks rows up in data already in the database (such as mirrored tables); ` +
        `to point at a row of the seed, give it a "$key" and reference that.`,
    );
  }
  if (rows.length > 1) {
    throw source.error(
      [...ref.path, 'where'],
      `More than one row of ${table.key} matches ${where}; add columns to "where" so that exactly one matches.`,
    );
  }
  return rows[0]!.value;
}
