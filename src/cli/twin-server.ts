import type { ResolvedConfig } from '../config/resolve-config.js';
import { guardDestructive } from '../guard/production-guard.js';
import { startServer } from '../provider/start-server.js';
import { withServer } from '../provider/with-server.js';
import { silentLogger } from '../util/logger.js';
import type { Terminal } from './terminal.js';

/**
 * Runs `fn` with the configuration moved onto the twin's server, as the test run would use it: the
 * configured server, or an embedded or container server pgtwin starts (and stops afterwards, unless it is
 * a persistent embedded one).
 */
export async function onTwinServer<T>(
  config: ResolvedConfig,
  terminal: Terminal,
  fn: (config: ResolvedConfig) => Promise<T>,
): Promise<T> {
  // The configured server needs no announcement; a server pgtwin starts does.
  const logger = config.provider === 'server' && !terminal.debug ? silentLogger : terminal.logger();
  const server = await startServer(config, { logger });
  try {
    const onServer = withServer(config, server);
    terminal.addSecrets([onServer.admin.password, onServer.test.password]);
    return await fn(onServer);
  } finally {
    await server.stop();
  }
}

/**
 * Refuses, before anything happens, a configuration whose test database is production: the production
 * guard's identity check alone, for commands (gc) whose own targets are other databases on the server.
 */
export async function refuseProductionTest(config: ResolvedConfig, operation: string): Promise<void> {
  await guardDestructive({
    // The marker check belongs to the operations themselves; only "is it production?" is asked here.
    config: { ...config, allowUnmarked: true },
    target: config.test,
    operation,
    creating: true,
  });
}
