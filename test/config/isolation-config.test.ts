import { describe, expect, it } from 'vitest';
import { configProject } from '../helpers/config.js';
import { ConfigError, DEFAULT_MAX_CONNECTIONS, DEFAULT_READY_COPIES, resolveConfig } from 'pgtwin';

describe('isolation.readyCopies', () => {
  it('defaults to one ready copy per worker', async () => {
    const config = await resolveConfig({ rootDir: configProject(), env: {} });
    expect(config.isolation.readyCopies).toBe(1);
    expect(DEFAULT_READY_COPIES).toBe(1);
    expect(config.sources['isolation.readyCopies']).toBe('default');
  });

  it('takes 0 (no pool) from the config file, and options over it', async () => {
    const rootDir = configProject({
      'pgtwin.config.json': JSON.stringify({ isolation: { readyCopies: 0 } }),
    });
    const fromFile = await resolveConfig({ rootDir, env: {} });
    expect(fromFile.isolation.readyCopies).toBe(0);
    expect(fromFile.sources['isolation.readyCopies']).toBe('pgtwin.config.json');
    const fromOptions = await resolveConfig({ rootDir, env: {}, isolation: { readyCopies: 3 } });
    expect(fromOptions.isolation.readyCopies).toBe(3);
  });

  it.each([-1, 1.5, 9, '2', null])('rejects readyCopies %j, naming the key and the range', async (value) => {
    const error = await resolveConfig({
      rootDir: configProject(),
      env: {},
      isolation: { readyCopies: value as number },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ key: 'isolation.readyCopies' });
    expect((error as Error).message).toBe(
      `isolation.readyCopies in options must be a whole number from 0 (no ready copies) to 8, got ${JSON.stringify(value)}.`,
    );
  });
});

describe('isolation.maxConnections', () => {
  it('defaults to 10 connections per worker', async () => {
    const config = await resolveConfig({ rootDir: configProject(), env: {} });
    expect(config.isolation).toEqual({
      maxConnections: DEFAULT_MAX_CONNECTIONS,
      readyCopies: DEFAULT_READY_COPIES,
    });
    expect(DEFAULT_MAX_CONNECTIONS).toBe(10);
    expect(config.sources['isolation.maxConnections']).toBe('default');
  });

  it('comes from options over the config file', async () => {
    const rootDir = configProject({
      'pgtwin.config.json': JSON.stringify({ isolation: { maxConnections: 4 } }),
    });
    expect((await resolveConfig({ rootDir, env: {} })).isolation.maxConnections).toBe(4);
    const config = await resolveConfig({ rootDir, env: {}, isolation: { maxConnections: 20 } });
    expect(config.isolation.maxConnections).toBe(20);
    expect(config.sources['isolation.maxConnections']).toBe('options');
  });

  it.each([0, 2.5, '3'])('rejects %j, naming the key', async (maxConnections) => {
    const error = await resolveConfig({
      rootDir: configProject(),
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
