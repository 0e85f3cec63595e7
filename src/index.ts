export {
  defineConfig,
  resolveConfig,
  DatabaseTarget,
  maskSecrets,
  DEFAULT_PRODUCTION,
  DEFAULT_TEST,
  DEFAULT_ADMIN_DATABASE,
  DEFAULT_MIRROR_FULL,
  DEFAULT_MIRROR_STRUCTURE_ONLY,
  DEFAULT_PROJECT_SCHEMAS,
  DEFAULT_SEEDS,
  DEFAULT_SEED_MAX_COUNT,
  DEFAULT_SEED_MAX_ROWS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_ENV_FILES,
  DEFAULT_PROVIDER,
  DEFAULT_EMBEDDED_CACHE_DIR,
  DEFAULT_EMBEDDED_DATA_DIR,
  DEFAULT_CONTAINER_IMAGE,
  DEFAULT_READY_COPIES,
  type ProviderName,
  type EmbeddedConfig,
  type ContainerConfig,
  type IsolationConfig,
  type PgtwinConfig,
  type DatabaseConfig,
  type MirrorConfig,
  type SchemaConfig,
  type SourceConfig,
  type SeedLimitsConfig,
  type ResolveConfigOptions,
  type ResolvedConfig,
} from './config/index.js';
export {
  DBConnector,
  DEFAULT_CONNECTOR_TARGET,
  type ConnectorTarget,
  type DBConnectorOptions,
  type TestMode,
} from './connection/db-connector.js';
export { DBOperator } from './pipeline/db-operator.js';
export { guardDestructive, GuardedTarget, type GuardRequest } from './guard/production-guard.js';
export {
  provisionTestDatabase,
  dropTestDatabase,
  type ProvisionResult,
} from './provision/provision-test-database.js';
export { createLogger, type Logger } from './util/logger.js';
export { gc, DEFAULT_GC_AGE_MS, type GcOptions, type GcResult } from './provision/gc.js';
export { SchemaSetup, type SchemaSetupResult } from './structure/schema-setup.js';
export {
  compareSchemas,
  renderSchemaDiff,
  structureFingerprint,
  readStructure,
  readTableCatalog,
  sortTablesByForeignKeys,
  type SchemaDiff,
  type ObjectDifference,
  type StructureSnapshot,
  type StructureObject,
  type SchemaSelection,
  type CatalogTable,
  type CatalogColumn,
} from './structure/index.js';
export { DatabaseSyncManager, type DatabaseName, type Direction } from './mirror/database-sync-manager.js';
export {
  compareMirror,
  renderMirrorDrift,
  DUMP_FORMAT_VERSION,
  type MirrorDrift,
  type TableDrift,
  type DumpManifest,
  type SyncTablesResult,
  type RestoreDumpResult,
} from './mirror/index.js';
export {
  enableIsolation,
  withTestTransaction,
  installIsolationHooks,
  exemptFromIsolation,
  formatLeakReport,
  DEFAULT_WAIT_TIMEOUT_MS,
  type Isolation,
  type IsolationOptions,
  type RunnerHooks,
  type LeakReport,
} from './isolation/index.js';
export type { EndpointAddress } from './endpoint/wire-endpoint.js';
export { createFactories, type Factories, type UserFactories, type SeedResult } from './seed/index.js';
export {
  PgtwinError,
  ConfigError,
  ProductionGuardError,
  ConnectionError,
  ProvisionError,
  MirrorPolicyError,
  MirrorError,
  DumpError,
  SeedError,
  FactoryError,
  IsolationError,
  UnsupportedObjectError,
  StructureApplyError,
  SqlScriptError,
  ProviderError,
  SetupError,
} from './errors.js';
export {
  EmbeddedServer,
  StartedEmbeddedServer,
  type EmbeddedServerOptions,
} from './provider/embedded-server.js';
