export * from './pgtwin-config.js';
export { resolveConfig, type ResolvedConfig } from './resolve-config.js';
export { DatabaseTarget } from './database-target.js';
export { maskSecrets } from './mask-secrets.js';
