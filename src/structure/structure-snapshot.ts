import type { CatalogTable } from './table-catalog.js';

/** The kinds of object a {@link StructureSnapshot} holds, in the order they are normally created. */
export const OBJECT_KINDS = [
  'schema',
  'extension',
  'type',
  'function',
  'sequence',
  'table',
  'view',
  'materialized view',
  'sequence ownership',
  'constraint',
  'index',
  'foreign key',
  'trigger',
  'row security',
  'policy',
  'comment',
] as const;

export type ObjectKind = (typeof OBJECT_KINDS)[number];

/** One object of the structure with the SQL that creates it. */
export interface StructureObject {
  kind: ObjectKind;
  /** Schema the object lives in (for comments: of the commented object). */
  schema: string;
  /**
   * Name within the schema: `projects` for a table, `projects.projects_pkey` for a constraint, index,
   * trigger or policy of a table, `touch_updated_at()` with argument types for a function, the commented
   * object's key for a comment.
   */
  name: string;
  /** `kind schema.name`, unique in a snapshot; what compare reports and fingerprints sort by. */
  key: string;
  /**
   * SQL creating the object as it is, with every name schema-qualified and no owner or privileges.
   * Equal text means equal object: compare and fingerprint rely on it.
   */
  definition: string;
}

/**
 * The structure of some schemas of a database, independent of the database it was read from (no OIDs,
 * owners, privileges or database name). Plain JSON: `JSON.parse(JSON.stringify(snapshot))` applies the same.
 */
export interface StructureSnapshot {
  /** Format marker, bumped if the shape changes incompatibly. */
  format: typeof SNAPSHOT_FORMAT;
  /** `server_version_num` of the source, for information (not part of the fingerprint). */
  serverVersion: number;
  /** The schemas the snapshot covers (resolved from the selection), sorted. */
  schemas: string[];
  /** Every object, in an order that creates dependencies first. */
  objects: StructureObject[];
  /** The table catalog of the same schemas, for consumers without a connection. */
  tables: CatalogTable[];
}

export const SNAPSHOT_FORMAT = 'pgtwin-structure/1';

/** The key of an object: `table public.projects`. */
export function objectKey(kind: ObjectKind, schema: string, name: string): string {
  return `${kind} ${schema}.${name}`;
}
