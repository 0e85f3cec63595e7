import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_SEED_MAX_COUNT, DEFAULT_SEED_MAX_ROWS, resolveConfig } from 'pgtwin';
import { configProject as project } from '../helpers/config-project.js';

describe('seedLimits', () => {
  it('defaults to 100,000 rows per $count entry and 1,000,000 per load', async () => {
    const config = await resolveConfig({ rootDir: project(), env: {} });
    expect(config.seedLimits).toEqual({ maxCount: 100_000, maxRows: 1_000_000 });
    expect([DEFAULT_SEED_MAX_COUNT, DEFAULT_SEED_MAX_ROWS]).toEqual([100_000, 1_000_000]);
    expect(config.sources['seedLimits.maxCount']).toBe('default');
  });

  it('takes each limit from options or the config file', async () => {
    const rootDir = project({ 'pgtwin.config.json': JSON.stringify({ seedLimits: { maxRows: 5_000_000 } }) });
    const config = await resolveConfig({ rootDir, env: {}, seedLimits: { maxCount: 250_000 } });
    expect(config.seedLimits).toEqual({ maxCount: 250_000, maxRows: 5_000_000 });
    expect(config.sources['seedLimits.maxRows']).toBe('pgtwin.config.json');
  });

  it.each([0, -1, 1.5, '100', null])('rejects maxCount %j, naming the key', async (maxCount) => {
    const error = await resolveConfig({
      rootDir: project(),
      env: {},
      seedLimits: { maxCount: maxCount as number },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ key: 'seedLimits.maxCount' });
    expect((error as Error).message).toBe(
      `seedLimits.maxCount in options must be a whole number, 1 or more, got ${JSON.stringify(maxCount)}.`,
    );
  });

  it('names an unknown limit', async () => {
    const error = await resolveConfig({
      rootDir: project(),
      env: {},
      seedLimits: { maxCounts: 5 } as never,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ key: 'seedLimits.maxCounts' });
    expect((error as Error).message).toMatch(
      /Unknown key "seedLimits\.maxCounts" in options \(did you mean "maxCount"\?\)/,
    );
  });
});
