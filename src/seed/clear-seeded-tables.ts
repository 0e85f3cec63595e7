import { ConfigError } from '../errors.js';
import type { Queryable } from '../structure/queryable.js';
import type { CatalogTable } from '../structure/table-catalog.js';
import { qualifyTableName } from './qualify-table-name.js';

/** Which tables {@link clearSeededTables} must leave alone. */
export interface ClearPolicy {
  /** Tables mirrored from production with their data (`schema.table`; bare means `public`): never emptied. */
  mirrored: readonly string[];
}

/**
 * Empties every table of `catalog` except the mirrored ones (so the structure-only and project schema tables)
 * and restarts their identity and serial sequences, in one `TRUNCATE ... RESTART IDENTITY`. Loading the seeds
 * again then gives exactly the seeded state, with the same ids. Returns the keys of the emptied tables.
 *
 * @example
 * ```ts
 * await clearSeededTables(client, catalog, { mirrored: ['public.object_models', 'public.prompts'] });
 * await loadSeedData(client, 'tests/data/seed_data.json');
 * ```
 */
export async function clearSeededTables(
  client: Queryable,
  catalog: readonly CatalogTable[],
  policy: ClearPolicy,
): Promise<string[]> {
  const mirrored = new Set(policy.mirrored.map(qualifyTableName));
  // Partitions are emptied through their parent.
  const cleared = catalog.filter((table) => !mirrored.has(table.key) && table.partitionOf === null);
  const clearedKeys = new Set(cleared.map((table) => table.key));
  for (const table of catalog) {
    if (!mirrored.has(table.key)) continue;
    const fk = table.foreignKeys.find((candidate) =>
      clearedKeys.has(`${candidate.references.schema}.${candidate.references.table}`),
    );
    if (fk) {
      throw new ConfigError(
        'mirror.full',
        `The mirrored table ${table.key} references ${fk.references.schema}.${fk.references.table} (${fk.name}), which is not ` +
          `mirrored and is emptied on reset. Mirror ${fk.references.schema}.${fk.references.table} too, or stop mirroring ${table.key}.`,
      );
    }
  }
  if (cleared.length > 0) {
    await client.query(`TRUNCATE ${cleared.map((table) => table.qualifiedName).join(', ')} RESTART IDENTITY`);
  }
  return cleared.map((table) => table.key);
}
