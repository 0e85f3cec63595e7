export { automaticFactory, type Row } from './automatic-factory.js';
export { clearSeededTables, type ClearPolicy } from './clear-seeded-tables.js';
export { createFactories, type Factories, type FactoryConnection } from './create-factories.js';
export { factoryNames } from './factory-names.js';
export {
  DEFAULT_SEQUENCE_START,
  FactoryRegistry,
  type AnyFactory,
  type FactoryRegistryOptions,
  type UserFactories,
} from './factory-registry.js';
export {
  DEFAULT_PROJECT_SCHEMA_PATTERN,
  loadSeedData,
  type LoadSeedOptions,
  type SeedResult,
} from './load-seed-data.js';
export { loadUserFactories } from './load-user-factories.js';
export { resolveSeedFiles } from './resolve-seed-files.js';
export { loadConfiguredSeeds } from './load-configured-seeds.js';
