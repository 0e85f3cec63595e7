import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import pg from 'pg';
import { runGlobalSetup, type TwinSetup } from '../../src/pipeline/global-setup.js';
import { EmbeddedServer } from '../../src/provider/embedded-server.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';
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

function run(logger: Logger = silentLogger) {
  return runGlobalSetup({
    rootDir: path.dirname(dataDir),
    configFile: false,
    env: {},
    provider: 'embedded',
    embedded: { dataDir },
    production: { ...SERVER, database: production },
    test: { database: 'embwarm_test', user: 'embwarm_user', password: 'embwarm-pass' },
    logger,
  });
}

/** A run whose debug lines are kept: whether it proved the test database unchanged without reading it. */
async function runTelling() {
  const lines: string[] = [];
  const twin = await run({ info: () => undefined, warn: () => undefined, debug: (line) => lines.push(line) });
  const quiet = lines.some((line) =>
    /^embwarm_test: no transaction committed on the server since the previous run but pgtwin's own markers; not read again$/.test(
      line,
    ),
  );
  return { twin, quiet };
}

async function onTestDatabase(twin: TwinSetup, sql: string): Promise<unknown[]> {
  const client = new pg.Client(twin.server.admin.withDatabase('embwarm_test').clientConfig());
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
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

  it('proves the kept test database unchanged in one statement while the server stayed quiet, and reads it again after a write', async () => {
    // The cluster is this file's: autovacuum's ANALYZE takes transaction ids at moments of its own choosing.
    const settle = await run();
    await onTestDatabase(settle, 'ALTER SYSTEM SET autovacuum = off');
    await settle.close();

    const quiet = await runTelling();
    // A write between the start's proof and the stamp, as psql or a dev server would make while `pgtwin setup`
    // runs: the stamp records only pgtwin's own marker writes since its quiet point, not this one.
    await onTestDatabase(quiet.twin, "INSERT INTO public.clients (name, slug) VALUES ('between', 'between')");
    await quiet.twin.close({ testsRan: false });
    expect([quiet.quiet, quiet.twin.copied]).toEqual([true, false]);

    const after = await runTelling();
    const left = await onTestDatabase(after.twin, "SELECT 1 FROM public.clients WHERE slug = 'between'");
    await after.twin.close();
    expect([after.quiet, after.twin.copied, left]).toEqual([false, true, []]);

    // Runs that run no test (`pgtwin setup`) stamp the state they started from, with their own marker writes
    // since (the template's last use, the run's start): the next run still proves it in one statement.
    const again = await runTelling();
    await again.twin.close({ testsRan: false });
    const last = await runTelling();
    await last.twin.close({ testsRan: false });
    expect([again.quiet, again.twin.copied, last.quiet, last.twin.copied]).toEqual([
      true,
      false,
      true,
      false,
    ]);
  });
});
