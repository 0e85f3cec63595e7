import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { runGlobalSetup } from '../../src/pipeline/global-setup.js';
import { EmbeddedServer } from '../../src/provider/embedded-server.js';
import { silentLogger } from '../../src/util/logger.js';
import { SERVER } from '../helpers/config.js';
import { adminQuery, databaseUrl, uniqueName } from '../helpers/databases.js';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';

// A private folder (mode 0700, as mktemp -d makes): as root, the server user cannot enter it.
const dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'pgtwin-embedded-warm-')), 'data');
const production = uniqueName('embwarm_prod');

beforeAll(async () => {
  await adminQuery(`CREATE DATABASE "${production}"`);
  await createContentgenProduction(databaseUrl(production), { data: FIXTURE_SIZES.tiny });
});
afterAll(async () => {
  await new EmbeddedServer({ dataDir }).remove();
  await adminQuery(`DROP DATABASE IF EXISTS "${production}" WITH (FORCE)`);
});

function run() {
  return runGlobalSetup({
    rootDir: path.dirname(dataDir),
    configFile: false,
    env: {},
    provider: 'embedded',
    embedded: { dataDir },
    production: { ...SERVER, database: production },
    test: { database: 'embwarm_test', user: 'embwarm_user', password: 'embwarm-pass' },
    logger: silentLogger,
  });
}

describe('the embedded provider across runs', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('reuses the template built by the previous run on the same data directory, on a new port, without copying', async () => {
    const first = await run();
    await first.close();
    const second = await run();
    await second.close();
    expect(first.reused).toBe(false);
    expect(second.test.port).not.toBe(first.test.port);
    expect([second.reused, second.template.database, second.copied]).toEqual([
      true,
      first.template.database,
      false,
    ]);
  });
});
