import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_MAX_CONNECTIONS, resolveConfig } from 'pgtwin';
import { configProject as project } from '../helpers/config-project.js';

describe('isolation.maxConnections', () => {
  it('defaults to 10 connections per worker', async () => {
    const config = await resolveConfig({ rootDir: project(), env: {} });
    expect(config.isolation).toEqual({ maxConnections: DEFAULT_MAX_CONNECTIONS });
    expect(DEFAULT_MAX_CONNECTIONS).toBe(10);
    expect(config.sources['isolation.maxConnections']).toBe('default');
  });

  it('comes from options over the config file', async () => {
    const rootDir = project({ 'pgtwin.config.json': JSON.stringify({ isolation: { maxConnections: 4 } }) });
    expect((await resolveConfig({ rootDir, env: {} })).isolation.maxConnections).toBe(4);
    const config = await resolveConfig({ rootDir, env: {}, isolation: { maxConnections: 20 } });
    expect(config.isolation.maxConnections).toBe(20);
    expect(config.sources['isolation.maxConnections']).toBe('options');
  });

  it.each([0, 2.5, '3'])('rejects %j, naming the key', async (maxConnections) => {
    const error = await resolveConfig({
      rootDir: project(),
      env: {},
      isolation: { maxConnections: maxConnections as number },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ key: 'isolation.maxConnections' });
    expect((error as Error).message).toBe(
      `isolation.maxConnections in options must be a whole number, 1 or more, got ${JSON.stringify(maxConnections)}.`,
    );
  });
});
