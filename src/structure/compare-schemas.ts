import type { SchemaSelection } from './schema-selection.js';
import type { ObjectKind, StructureObject } from './structure-snapshot.js';
import { toSnapshot, type StructureSource } from './structure-source.js';

/** One object that differs between two structures. */
export interface ObjectDifference {
  key: string;
  kind: ObjectKind;
  schema: string;
  name: string;
  /** Definition in the expected structure (`a`), or `null` when it is missing there. */
  expected: string | null;
  /** Definition in the actual structure (`b`), or `null` when it is missing there. */
  actual: string | null;
}

/** Result of {@link compareSchemas}; each list sorted by key. */
export interface SchemaDiff {
  /** True when nothing is missing, extra or changed. */
  equal: boolean;
  /** In `a` but not in `b`. */
  missing: ObjectDifference[];
  /** In `b` but not in `a`. */
  extra: ObjectDifference[];
  /** In both, with different definitions. */
  changed: ObjectDifference[];
}

/**
 * Compares the structure `b` (actual, e.g. the test database) against `a` (expected, e.g. production),
 * object by object. Either side may be a snapshot or a connection to read one from.
 *
 * @example
 * ```ts
 * const diff = await compareSchemas(production, test);
 * if (!diff.equal) console.log(renderSchemaDiff(diff));
 * ```
 */
export async function compareSchemas(
  a: StructureSource,
  b: StructureSource,
  selection?: SchemaSelection,
): Promise<SchemaDiff> {
  const [expected, actual] = await Promise.all([toSnapshot(a, selection), toSnapshot(b, selection)]);
  const inA = byKey(expected.objects);
  const inB = byKey(actual.objects);
  const difference = (key: string): ObjectDifference => {
    const object = (inA.get(key) ?? inB.get(key))!;
    return {
      key,
      kind: object.kind,
      schema: object.schema,
      name: object.name,
      expected: inA.get(key)?.definition ?? null,
      actual: inB.get(key)?.definition ?? null,
    };
  };
  const keys = [...new Set([...inA.keys(), ...inB.keys()])].sort();
  const missing = keys.filter((key) => !inB.has(key)).map(difference);
  const extra = keys.filter((key) => !inA.has(key)).map(difference);
  const changed = keys
    .filter((key) => inA.has(key) && inB.has(key) && inA.get(key)!.definition !== inB.get(key)!.definition)
    .map(difference);
  return { equal: missing.length + extra.length + changed.length === 0, missing, extra, changed };
}

function byKey(objects: StructureObject[]): Map<string, StructureObject> {
  return new Map(objects.map((object) => [object.key, object]));
}
