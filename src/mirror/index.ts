export { enforceMirrorPolicy, type MirrorPolicy } from './mirror-policy.js';
export { MIRROR_SESSION_SETTINGS } from './mirror-session.js';
export { syncTables, type SyncTablesOptions, type SyncTablesResult } from './sync-tables.js';
export { tableChecksums, type ChecksumOptions, type TableChecksum } from './table-checksum.js';
export type { SequenceValue } from './table-sequences.js';
export {
  compareMirror,
  DEFAULT_DRIFT_KEY_LIMIT,
  type KeyList,
  type MirrorDrift,
  type RowKey,
  type TableDrift,
} from './compare-mirror.js';
export { renderMirrorDrift } from './render-mirror-drift.js';
export { createDump, type CreateDumpOptions } from './create-dump.js';
export { restoreDump, type RestoreDumpOptions, type RestoreDumpResult } from './restore-dump.js';
export {
  DUMP_FORMAT,
  DUMP_FORMAT_VERSION,
  type DumpFile,
  type DumpManifest,
  type DumpTable,
} from './dump-manifest.js';
