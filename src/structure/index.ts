export {
  DEFAULT_SCHEMA_SELECTION,
  matchSchemas,
  selectionFromConfig,
  resolveSchemas,
  type SchemaSelection,
} from './schema-selection.js';
export type { Queryable } from './queryable.js';
export {
  readTableCatalog,
  quoteQualified,
  tableKey,
  type CatalogColumn,
  type CatalogForeignKey,
  type CatalogTable,
  type CatalogUniqueKey,
  type ForeignKeyAction,
  type TypeCategory,
} from './table-catalog.js';
export {
  sortTablesByForeignKeys,
  type ForeignKeyCycle,
  type TableOrder,
} from './sort-tables-by-foreign-keys.js';
export { readStructure } from './read-structure.js';
export { applyStructure, createStructureObjects, type ApplyStructureOptions } from './apply-structure.js';
export { cloneStructure, type CloneStructureOptions } from './clone-structure.js';
export {
  OBJECT_KINDS,
  SNAPSHOT_FORMAT,
  type ObjectKind,
  type StructureObject,
  type StructureSnapshot,
} from './structure-snapshot.js';
export type { UnsupportedObject } from './find-unsupported-objects.js';
export { compareSchemas, type ObjectDifference, type SchemaDiff } from './compare-schemas.js';
export { renderSchemaDiff, type RenderSchemaDiffOptions } from './render-schema-diff.js';
export { structureFingerprint } from './structure-fingerprint.js';
export type { StructureSource } from './structure-source.js';
export { applySqlScripts } from './apply-sql-scripts.js';
