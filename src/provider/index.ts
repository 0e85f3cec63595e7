export { startServer, type StartServerOptions } from './start-server.js';
export { withServer } from './with-server.js';
export type { StartedServer, ServerProviderName } from './started-server.js';
export {
  EmbeddedServer,
  StartedEmbeddedServer,
  EMBEDDED_HOST,
  EMBEDDED_SUPERUSER,
  type EmbeddedServerOptions,
} from './embedded-server.js';
export { probePostgres, DEFAULT_PROBE_TIMEOUT_MS, type ProbeResult } from './probe-postgres.js';
