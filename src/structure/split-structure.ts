import {
  OBJECT_KINDS,
  type ObjectKind,
  type StructureObject,
  type StructureSnapshot,
} from './structure-snapshot.js';

/**
 * Kinds that make loading rows slower or that rows must satisfy, created after the data as pg_restore does:
 * keys and other constraints, indexes, foreign keys, triggers, row security, policies, comments.
 */
const AFTER_DATA_KINDS: ReadonlySet<ObjectKind> = new Set(
  OBJECT_KINDS.slice(OBJECT_KINDS.indexOf('constraint')),
);

/**
 * Splits `snapshot` into what must exist before rows are loaded (schemas, types, functions, sequences, tables,
 * views, and CHECK constraints, which the load then checks row by row in its parallel sessions, as pg_dump
 * puts them in CREATE TABLE) and what is cheaper to create once they are (keys, indexes, foreign keys,
 * triggers, policies and comments), as pg_restore's pre-data and post-data sections. Applying `beforeData`
 * then `afterData` creates the same structure as applying `snapshot`.
 *
 * The objects are ordered dependencies first and kinds in {@link OBJECT_KINDS} order otherwise, so every
 * object listed after the first after-data one may depend on an after-data object (a view grouping by a
 * primary key) and follows the data too; a CHECK constraint depends on its table and functions alone.
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
  const first = snapshot.objects.findIndex(
    (object) => AFTER_DATA_KINDS.has(object.kind) && !isValidCheck(object),
  );
  const before = (object: StructureObject, index: number) =>
    isValidCheck(object) || first === -1 || index < first;
  return {
    beforeData: { ...snapshot, objects: snapshot.objects.filter(before) },
    afterData: { ...snapshot, objects: snapshot.objects.filter((object, index) => !before(object, index)) },
  };
}

/**
 * Independent indexes of `afterData`: plain `CREATE INDEX` statements on ordinary tables (no partition tree to
 * attach to, no CLUSTER), which other sessions can build at once, before the rest (nothing in the section
 * is needed by them, and a foreign key may need them). Returns them and the rest, in order.
 */
export function independentIndexes(afterData: StructureSnapshot): {
  indexes: StructureObject[];
  rest: StructureSnapshot;
} {
  const plain = afterData.tables
    .filter((table) => !table.partitioned && !table.partitionOf)
    .flatMap((table) =>
      spellings(table.schema).flatMap((schema) =>
        spellings(table.name).map((name) => ` ON ${schema}.${name} USING `),
      ),
    );
  const independent = (object: StructureObject) =>
    object.kind === 'index' &&
    !object.definition.includes('\n') &&
    plain.some((on) => object.definition.includes(on));
  return {
    indexes: afterData.objects.filter(independent),
    rest: { ...afterData, objects: afterData.objects.filter((object) => !independent(object)) },
  };
}

/** How `pg_get_indexdef` may print a name: bare when `quote_ident` leaves it so (unless a keyword), else quoted. */
function spellings(name: string): string[] {
  const quoted = `"${name.replaceAll('"', '""')}"`;
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? [name, quoted] : [quoted];
}

/** A CHECK constraint that holds for existing rows (a NOT VALID one is not checked on them, so follows the data). */
function isValidCheck(object: StructureObject): boolean {
  return (
    object.kind === 'constraint' &&
    /\bADD CONSTRAINT (?:"(?:[^"]|"")*"|[^\s"]+) CHECK \(/.test(object.definition) &&
    !/\bNOT VALID;?\s*$/.test(object.definition)
  );
}
