import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { CONTAINER_MODULE, importContainerModule } from '../../src/provider/container-server.js';
import { startServer } from '../../src/provider/start-server.js';
import { withServer } from '../../src/provider/with-server.js';
import { testConfig } from '../helpers/config.js';

// The same detection testcontainers itself runs; without an engine, only the failure path can be tested.
const engine = await import('testcontainers')
  .then(({ getContainerRuntimeClient }) => getContainerRuntimeClient())
  .then(
    () => true,
    () => false,
  );

describe("provider 'container'", () => {
  it('loads @testcontainers/postgresql only when used, and explains how to install it when it is missing', async () => {
    await expect(importContainerModule()).resolves.toHaveProperty('PostgreSqlContainer');
    const missing = importContainerModule('@testcontainers/not-installed');
    await expect(missing).rejects.toThrow(ProviderError);
    await expect(missing).rejects.toMatchObject({
      provider: 'container',
      reason: 'module-missing',
      message: expect.stringContaining(
        "install @testcontainers/not-installed (>=11) as a dev dependency, or use provider 'embedded'",
      ),
    });
    expect(CONTAINER_MODULE).toBe('@testcontainers/postgresql');
  });

  it.skipIf(engine)(
    'without a container engine, says none answers and suggests the embedded provider',
    async () => {
      const config = await testConfig({ provider: 'container' });
      const start = startServer(config);
      await expect(start).rejects.toThrow(ProviderError);
      await expect(start).rejects.toMatchObject({
        provider: 'container',
        reason: 'no-engine',
        message: expect.stringMatching(/needs a container engine, and none answers.*provider 'embedded'/s),
      });
    },
  );

  it.skipIf(!engine)(
    `starts a throwaway PostgreSQL container and removes it on stop${engine ? '' : ' (skipped: no container engine on this machine)'}`,
    async () => {
      const config = await testConfig({ provider: 'container' });
      const server = await startServer(config);
      try {
        expect(server.provider).toBe('container');
        expect(withServer(config, server).test.port).toBe(server.admin.port);
        const client = new pg.Client(server.admin.clientConfig());
        await client.connect();
        const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
        await client.end();
        expect(rows).toEqual([{ one: 1 }]);
      } finally {
        await server.stop();
      }
    },
    180_000,
  );
});
