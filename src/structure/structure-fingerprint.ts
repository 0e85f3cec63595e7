import { createHash } from 'node:crypto';
import type { SchemaSelection } from './schema-selection.js';
import { toSnapshot, type StructureSource } from './structure-source.js';

/**
 * A sha256 (hex) of the structure: every object's key and definition, sorted by key. Equal for a database
 * and its clone (it holds no OIDs, owners, privileges or database name); different after any change
 * to an object that the snapshot describes. Cheap to store and compare for "is the test structure current?".
 *
 * @example
 * ```ts
 * if ((await structureFingerprint(production)) !== (await structureFingerprint(test))) await cloneStructure(...);
 * ```
 */
export async function structureFingerprint(
  source: StructureSource,
  selection?: SchemaSelection,
): Promise<string> {
  const snapshot = await toSnapshot(source, selection);
  const hash = createHash('sha256');
  for (const object of [...snapshot.objects].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    // Lengths first, so no two different lists of objects serialise to the same bytes.
    hash.update(`${object.key.length}:${object.key}${object.definition.length}:${object.definition}`);
  }
  return hash.digest('hex');
}
