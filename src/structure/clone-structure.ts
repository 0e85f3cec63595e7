import { applyStructure, type ApplyStructureOptions } from './apply-structure.js';
import type { Queryable } from './queryable.js';
import { readStructure } from './read-structure.js';
import { DEFAULT_SCHEMA_SELECTION, type SchemaSelection } from './schema-selection.js';
import type { StructureSnapshot } from './structure-snapshot.js';

/** Options of {@link cloneStructure}. */
export interface CloneStructureOptions extends ApplyStructureOptions {
  /** Schemas to clone. @default DEFAULT_SCHEMA_SELECTION */
  selection?: SchemaSelection;
}

/**
 * Recreates the structure of `source`'s selected schemas in `target`: {@link readStructure} then
 * {@link applyStructure}. Unsupported objects fail the read, so nothing is written; a failed apply
 * rolls back. Returns the snapshot that was applied.
 *
 * @example
 * ```ts
 * await cloneStructure(production, test, { selection: { schemas: ['public', 'project_*'] }, replace: true });
 * ```
 */
export async function cloneStructure(
  source: Queryable,
  target: Queryable,
  options: CloneStructureOptions = {},
): Promise<StructureSnapshot> {
  const snapshot = await readStructure(source, options.selection ?? DEFAULT_SCHEMA_SELECTION);
  await applyStructure(target, snapshot, options);
  return snapshot;
}
