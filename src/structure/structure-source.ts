import type { Queryable } from './queryable.js';
import { readStructure } from './read-structure.js';
import { DEFAULT_SCHEMA_SELECTION, type SchemaSelection } from './schema-selection.js';
import type { StructureSnapshot } from './structure-snapshot.js';

/** A snapshot already read, or a connection to read one from. */
export type StructureSource = StructureSnapshot | Queryable;

/** `source` itself when it is a snapshot, else {@link readStructure} of it. */
export function toSnapshot(
  source: StructureSource,
  selection: SchemaSelection = DEFAULT_SCHEMA_SELECTION,
): Promise<StructureSnapshot> {
  return 'objects' in source ? Promise.resolve(source) : readStructure(source, selection);
}
