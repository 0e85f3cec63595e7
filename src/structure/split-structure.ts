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

/** An object of the after-data section that a session of its own can create once its table's rows are in. */
export interface TableIndex {
  /** The table's key (`schema.name`). */
  table: string;
  object: StructureObject;
}

/**
 * Independent indexes of `afterData`: plain `CREATE INDEX` statements on ordinary tables (no partition tree to
 * attach to, no CLUSTER), which other sessions can build at once, before the rest (nothing in the section
 * is needed by them, and a foreign key may need them). A plain primary key or unique constraint of such a
 * table becomes an index too, built the same way under the constraint's name, and the constraint in the rest
 * takes it over (`ADD CONSTRAINT ... USING INDEX`, which builds nothing and gives the same catalog entries):
 * keys are then built at once with the other indexes rather than one by one after them. Returns the indexes,
 * each with its table, and the rest, in order.
 */
export function independentIndexes(afterData: StructureSnapshot): {
  indexes: TableIndex[];
  rest: StructureSnapshot;
} {
  const spelled = new Map<string, string>();
  for (const table of afterData.tables) {
    if (table.partitioned || table.partitionOf) continue;
    for (const schema of spellings(table.schema))
      for (const name of spellings(table.name)) spelled.set(`${schema}.${name}`, table.key);
  }
  const indexes: TableIndex[] = [];
  const rest: StructureObject[] = [];
  for (const object of afterData.objects) {
    const index =
      object.kind === 'index' && !object.definition.includes('\n') && INDEX_ON.exec(object.definition);
    const table = index ? spelled.get(index[1]!) : undefined;
    if (table) {
      indexes.push({ table, object });
      continue;
    }
    const key = object.kind === 'constraint' ? PLAIN_KEY.exec(object.definition) : null;
    const keyTable = key ? spelled.get(key[1]!) : undefined;
    if (key && keyTable) {
      const [, on, name, kind, columns] = key;
      indexes.push({
        table: keyTable,
        object: { ...object, definition: `CREATE UNIQUE INDEX ${name} ON ${on} USING btree (${columns})` },
      });
      rest.push({
        ...object,
        definition: `ALTER TABLE ONLY ${on} ADD CONSTRAINT ${name} ${kind} USING INDEX ${name}`,
      });
      continue;
    }
    rest.push(object);
  }
  return { indexes, rest: { ...afterData, objects: rest } };
}

/** A name as `pg_get_indexdef` and `pg_get_constraintdef` print it: quoted, or bare. */
const NAME = String.raw`(?:"(?:[^"]|"")*"|[^\s".]+)`;

/** The table of a `CREATE [UNIQUE] INDEX` as `pg_get_indexdef` prints it. */
const INDEX_ON = new RegExp(String.raw`^CREATE (?:UNIQUE )?INDEX ${NAME} ON (${NAME}\.${NAME}) USING `);

/**
 * A primary key or unique constraint with nothing but its columns (no INCLUDE, WITH, tablespace, NULLS NOT
 * DISTINCT or DEFERRABLE): exactly what a unique btree index on those columns under its name gives.
 */
const PLAIN_KEY = new RegExp(
  String.raw`^ALTER TABLE ONLY (${NAME}\.${NAME}) ADD CONSTRAINT (${NAME}) (PRIMARY KEY|UNIQUE) \(([^()]*)\);?$`,
);

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
