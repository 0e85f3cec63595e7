import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  captureBaseline,
  captureCatalogs,
  unchangedChecksums,
  unchangedStructure,
  type ProductionBaseline,
} from '../../src/mirror/production-baseline.js';
import { tableChecksums } from '../../src/mirror/table-checksum.js';
import { runGlobalSetup } from '../../src/pipeline/global-setup.js';
import { EmbeddedServer, type StartedEmbeddedServer } from '../../src/provider/embedded-server.js';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { PRODUCTION_ROWS_SQL, STRUCTURE_SQL } from './mirror-databases.js';

// A production no one writes to, which the shared server (every test file writing at once) never is: a
// cluster of this file's own, autovacuum off (its ANALYZE takes transaction ids when it pleases).
const dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'pgtwin-quiet-production-')), 'data');
const MIRRORED = ['public.object_models', 'public.prompts'];
let server: StartedEmbeddedServer;
let production: pg.ClientConfig;

beforeAll(async () => {
  server = await new EmbeddedServer({ dataDir }).start();
  await query(server.admin.clientConfig(), 'ALTER SYSTEM SET autovacuum = off');
  await query(server.admin.clientConfig(), 'SELECT pg_reload_conf()');
  await query(server.admin.clientConfig(), 'CREATE DATABASE quiet_production');
  production = server.admin.withDatabase('quiet_production').clientConfig();
  await query(production, STRUCTURE_SQL);
  await query(production, PRODUCTION_ROWS_SQL);
}, CHILD_TEST_TIMEOUT_MS);
afterAll(async () => {
  await server?.stop();
  await new EmbeddedServer({ dataDir }).remove();
});

async function query(config: pg.ClientConfig, sql: string): Promise<void> {
  await session(config, (client) => client.query(sql));
}

async function session<T>(config: pg.ClientConfig, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A baseline of the rows and of the catalogs as a full reading of the fingerprint keeps it. */
function baselineNow(): Promise<ProductionBaseline> {
  return session(production, async (reader) => {
    let state: Awaited<ReturnType<typeof captureBaseline>>;
    let catalogs: Awaited<ReturnType<typeof captureCatalogs>>;
    const data = await tableChecksums(reader, MIRRORED, {
      quick: true,
      inSnapshot: async (inside, catalog) => {
        state = await captureBaseline(inside, catalog);
        catalogs = await captureCatalogs(inside, 'reader');
      },
    });
    const tables = Object.fromEntries(
      Object.entries(state!.tables).map(([key, table]) => [key, { ...table, checksum: data[key]! }]),
    );
    return { ...state!, requested: MIRRORED, structure: 'S', catalogs, tables };
  });
}

/**
 * `baseline` with every count it holds one off: only a proof that reads no row and no catalog still finds
 * it unchanged, which tells that proof from the one that counts.
 */
function miscounted(baseline: ProductionBaseline): ProductionBaseline {
  const tables = Object.fromEntries(
    Object.entries(baseline.tables).map(([key, table]) => [key, { ...table, rows: table.rows + 1 }]),
  );
  const catalogs = Object.fromEntries(
    Object.entries(baseline.catalogs!.catalogs).map(([name, state]) => [
      name,
      { ...state, rows: state.rows + 1 },
    ]),
  );
  return { ...baseline, tables, catalogs: { ...baseline.catalogs!, catalogs } };
}

const rows = (baseline: ProductionBaseline) =>
  session(production, (client) => unchangedChecksums(client, baseline, MIRRORED, Promise.resolve('S')));
const structure = (baseline: ProductionBaseline) =>
  session(production, async (client) => {
    const result = await unchangedStructure(client, baseline, 'reader');
    return 'proof' in result || result;
  });

describe('a production no transaction has written to since the last reading', () => {
  it('is proven unchanged without reading a row or a catalog, and read again once anything took a transaction id', async () => {
    const baseline = miscounted(await baselineNow());
    expect(await rows(baseline)).toHaveProperty('data');
    expect(await structure(baseline)).toBe(true);

    // Any write on the server, here a row of another table, sends both proofs back to counting: they find
    // the counts this test put off by one.
    await query(production, 'CREATE TABLE public.elsewhere (id int)');
    expect(await rows(baseline)).toEqual({ stale: 'rows were deleted from public.object_models' });
    expect(await structure(baseline)).toMatchObject({
      stale: expect.stringMatching(/^rows were deleted from /),
    });

    // A fresh reading, untouched, still holds by counting when the server was not quiet in between.
    const fresh = await baselineNow();
    await query(production, 'INSERT INTO public.elsewhere VALUES (1)');
    expect(await rows(fresh)).toHaveProperty('data');
    expect(await structure(fresh)).toBe(true);
  });
});

describe("a production on the test database's own server", () => {
  /**
   * One `pgtwin setup` (it runs no test) with production and the test database on this file's cluster;
   * returns how its reading of production's rows and catalogs went (their debug lines), and whether its
   * teardown proved the test database unchanged without reading it (`during` given: tests ran).
   */
  async function setupOnOneServer(
    during?: () => Promise<void>,
  ): Promise<{ data: string; structure: string; teardownProved?: boolean }> {
    const lines: string[] = [];
    const { host, port, user, password } = server.admin;
    const twin = await runGlobalSetup({
      rootDir: path.dirname(dataDir),
      configFile: false,
      env: {},
      provider: 'server',
      production: { host, port, user, password, database: 'shared_production' },
      test: { host, port, user: 'shared_user', password: 'shared-pass', database: 'shared_test' },
      admin: { host, port, user, password, database: 'postgres' },
      logger: { info: () => undefined, warn: () => undefined, debug: (line) => lines.push(line) },
    });
    await during?.();
    await twin.close({ testsRan: during !== undefined });
    const line = (part: string) =>
      lines.find(
        (text) => text.startsWith(`fingerprint ${part}: `) && / (reused|hashing|reading)/.test(text),
      ) ?? '';
    const proved = lines.some((text) => text.includes('nothing committed on the server during the run'));
    return { data: line('data'), structure: line('structure'), ...(during && { teardownProved: proved }) };
  }

  const QUIET = /no transaction on production's server since the last proof but pgtwin's own markers/;

  it("is proven unchanged in one statement across runs whose only transactions were pgtwin's markers, and counted after any other", async () => {
    await query(server.admin.clientConfig(), 'CREATE DATABASE shared_production');
    await session(server.admin.withDatabase('shared_production').clientConfig(), (client) =>
      createContentgenProduction(client, { data: FIXTURE_SIZES.tiny }),
    );
    // The first run reads and builds (its copies take ids); the second proves by counting and keeps the test
    // database: from there on, each run's only transactions are its markers.
    await setupOnOneServer();
    const counted = await setupOnOneServer();
    expect(counted.data).not.toMatch(QUIET);
    const quiet = await setupOnOneServer();
    expect(quiet).toEqual({ data: expect.stringMatching(QUIET), structure: expect.stringMatching(QUIET) });
    expect((await setupOnOneServer()).data).toMatch(QUIET);

    // A write anywhere on the server, here a row of a table production does not mirror: counted again, found
    // unchanged, and the chain starts over from that proof.
    await query(
      server.admin.withDatabase('shared_production').clientConfig(),
      "INSERT INTO public.clients (name, slug, email) VALUES ('Other', 'other', 'other@example.test')",
    );
    const after = await setupOnOneServer();
    expect(after.data).toMatch(
      /^fingerprint data: no mirrored row written since the last reading; checksums reused$/,
    );
    expect((await setupOnOneServer()).data).toMatch(QUIET);
  });

  it('stays proven across a run whose tests wrote and rolled back, and not across one that committed a write', async () => {
    const { host, port, user, password } = server.admin;
    const rolledBack = async () => {
      // What isolated tests do: writes in savepoints of a transaction that is rolled back, each taking ids.
      const test = new pg.Client({
        host,
        port,
        user: 'shared_user',
        password: 'shared-pass',
        database: 'shared_test',
      });
      await test.connect();
      try {
        for (let i = 0; i < 3; i++) {
          await test.query('BEGIN');
          await test.query('SAVEPOINT s');
          await test.query(
            `INSERT INTO public.clients (name, slug, email) VALUES ('T', 't${i}', 't@example.test')`,
          );
          await test.query('RELEASE SAVEPOINT s');
          await test.query('ROLLBACK');
        }
      } finally {
        await test.end();
      }
      // Rolled back on production itself too: it changed nothing there either.
      await query(
        { host, port, user, password, database: 'shared_production' },
        "BEGIN; INSERT INTO public.clients (name, slug, email) VALUES ('R', 'r', 'r@example.test'); ROLLBACK",
      );
    };
    expect((await setupOnOneServer()).data).toMatch(QUIET);
    // Its teardown finds the test database unchanged without reading a table: every id the tests took rolled back.
    expect(await setupOnOneServer(rolledBack)).toEqual({
      data: expect.stringMatching(QUIET),
      structure: expect.stringMatching(QUIET),
      teardownProved: true,
    });
    // The run after it still finds nothing but its markers since the point carried past the rolled-back ids.
    expect((await setupOnOneServer()).data).toMatch(QUIET);

    const committed = () =>
      query(
        { host, port, user, password, database: 'shared_production' },
        "INSERT INTO public.clients (name, slug, email) VALUES ('Kept', 'kept', 'kept@example.test')",
      );
    // A committed write, though not in the test database: its teardown reads the test database again.
    expect((await setupOnOneServer(committed)).teardownProved).toBe(false);
    expect((await setupOnOneServer()).data).toMatch(
      /^fingerprint data: no mirrored row written since the last reading; checksums reused$/,
    );
  });
});
