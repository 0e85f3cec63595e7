import { randomBytes } from 'node:crypto';
import { DatabaseTarget } from '../config/database-target.js';
import { ENV_NAMES } from '../config/env-names.js';
import { ProviderError } from '../errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { serverSettingArgs } from './server-settings.js';

/** The optional peer dependency the container provider loads on first use. */
export const CONTAINER_MODULE = '@testcontainers/postgresql';

const POSTGRES_PORT = 5432;

/** The part of `@testcontainers/postgresql` pgtwin uses; the same in its 11 and 12 lines. */
interface PostgreSqlContainerBuilder {
  withDatabase(database: string): this;
  withUsername(username: string): this;
  withPassword(password: string): this;
  withCommand(command: string[]): this;
  start(): Promise<{ getHost(): string; getMappedPort(port: number): number; stop(): Promise<unknown> }>;
}
interface ContainerModule {
  PostgreSqlContainer: new (image: string) => PostgreSqlContainerBuilder;
}

/** A PostgreSQL container started for this run; {@link StartedContainerServer.stop} removes it. */
export interface StartedContainerServer {
  readonly image: string;
  /** The superuser on the `postgres` database, at the port the engine mapped. */
  readonly admin: DatabaseTarget;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway PostgreSQL container from `image` through `@testcontainers/postgresql`, which is
 * loaded only now, so pgtwin works without it for every other provider.
 *
 * @example
 * ```ts
 * const server = await startContainerServer('postgres:17-alpine');
 * try { ... } finally { await server.stop(); }
 * ```
 */
export async function startContainerServer(
  image: string,
  options: { logger?: Logger } = {},
): Promise<StartedContainerServer> {
  const logger = options.logger ?? silentLogger;
  const { PostgreSqlContainer } = await importContainerModule();
  const began = performance.now();
  const password = randomBytes(18).toString('base64url');
  let container: Awaited<ReturnType<PostgreSqlContainerBuilder['start']>>;
  try {
    container = await new PostgreSqlContainer(image)
      .withDatabase('postgres')
      .withUsername('postgres')
      .withPassword(password)
      .withCommand(['postgres', ...serverSettingArgs()])
      .start();
  } catch (error) {
    throw containerError(error, image);
  }
  const admin = new DatabaseTarget({
    host: container.getHost(),
    port: container.getMappedPort(POSTGRES_PORT),
    database: 'postgres',
    user: 'postgres',
    password,
  });
  logger.info(
    `container ${image} at ${admin.host}:${admin.port}, ready in ${Math.round(performance.now() - began)} ms`,
  );
  let stopping: Promise<void> | undefined;
  return {
    image,
    admin,
    stop: () => (stopping ??= container.stop().then(() => undefined)),
  };
}

/**
 * Loads the container module, or explains how to install it. `specifier` exists for testing the message.
 * @internal
 */
export async function importContainerModule(specifier = CONTAINER_MODULE): Promise<ContainerModule> {
  let loaded: Partial<ContainerModule> & { default?: Partial<ContainerModule> };
  try {
    loaded = (await import(specifier)) as typeof loaded;
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const missing =
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message.includes(specifier);
    throw new ProviderError(
      'container',
      'module-missing',
      missing
        ? `provider 'container' needs ${specifier}, which is not installed: install ${specifier} (>=11) ` +
            "as a dev dependency, or use provider 'embedded'."
        : `${specifier} failed to load: ${message}. Reinstall it (>=11), or use provider 'embedded'.`,
      { cause: error },
    );
  }
  // Its CommonJS build reaches ESM as named exports, or only as `default` under some loaders.
  const PostgreSqlContainer = loaded.PostgreSqlContainer ?? loaded.default?.PostgreSqlContainer;
  if (!PostgreSqlContainer) {
    throw new ProviderError(
      'container',
      'module-missing',
      `${specifier} does not export PostgreSqlContainer; install a supported version (>=11), or use provider 'embedded'.`,
    );
  }
  return { PostgreSqlContainer };
}

function containerError(error: unknown, image: string): ProviderError {
  const message = (error as Error)?.message ?? String(error);
  if (message.includes('Could not find a working container runtime strategy')) {
    return new ProviderError(
      'container',
      'no-engine',
      "provider 'container' needs a container engine, and none answers (testcontainers found no Docker or " +
        'Podman socket, nor DOCKER_HOST). Start Docker or Podman, or set DOCKER_HOST; or use ' +
        `provider 'embedded' (${ENV_NAMES.provider}=embedded), which needs no engine.`,
      { cause: error },
    );
  }
  return new ProviderError(
    'container',
    'start',
    `Could not start a PostgreSQL container from ${image}: ${message}. Check container.image and that the ` +
      "engine can pull it, or use provider 'embedded'.",
    { cause: error },
  );
}
