import type { ObjectKind, StructureSnapshot } from './structure-snapshot.js';

/** Kinds that make loading rows slower or that rows must satisfy: created after the data, as pg_restore does. */
const AFTER_DATA_KINDS: ReadonlySet<ObjectKind> = new Set([
  'constraint',
  'index',
  'foreign key',
  'trigger',
  'row security',
  'policy',
  'comment',
]);

/**
 * Splits `snapshot` into what must exist before rows are loaded (schemas, types, functions, sequences, tables,
 * views) and what is cheaper to create once they are (keys, indexes, foreign keys, triggers, policies and
 * comments), as pg_restore's pre-data and post-data sections. Applying `beforeData` then `afterData` creates the
 * same structure as applying `snapshot`.
 *
 * The objects are ordered dependencies first and kinds in {@link OBJECT_KINDS} order otherwise, so every
 * object listed after the first after-data one depends, directly or not, on an after-data object (a view
 * grouping by a primary key): the split is at that object, and the rest follows the data too.
 *
 * @example
 * const { beforeData, afterData } = splitStructure(snapshot);
 * await applyStructure(target, beforeData, { replace: true });
 * // ... COPY the rows ...
 * await applyStructure(target, afterData);
 */
export function splitStructure(snapshot: StructureSnapshot): {
  beforeData: StructureSnapshot;
  afterData: StructureSnapshot;
} {
  const at = snapshot.objects.findIndex((object) => AFTER_DATA_KINDS.has(object.kind));
  const split = at === -1 ? snapshot.objects.length : at;
  return {
    beforeData: { ...snapshot, objects: snapshot.objects.slice(0, split) },
    afterData: { ...snapshot, objects: snapshot.objects.slice(split) },
  };
}
