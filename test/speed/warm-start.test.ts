import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMarker } from '../../src/guard/test-marker.js';
import { ReadyCopies } from '../../src/pipeline/ready-copies.js';
import { runGlobalSetup, type TwinSetup } from '../../src/pipeline/global-setup.js';
import { connect } from '../../src/connection/connect.js';
import { countContents } from '../../src/isolation/leak-detector.js';
import type { PgtwinConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { startAliasProxy, type StartedAliasProxy } from '../helpers/alias-proxy.js';
import { adminQuery, uniqueName } from '../helpers/databases.js';
import { SERVER } from '../helpers/config.js';
import { dropAfterAll, queryDatabase, speedProject } from './speed-fixture.js';

const created = new Set<string>();
dropAfterAll(() => created);

let project: Awaited<ReturnType<typeof speedProject>>;
let proxy: StartedAliasProxy;
const testDb = uniqueName('warm_test');

beforeAll(async () => {
  project = await speedProject('warm');
  created.add(project.production);
  // The same server on another port, as the embedded server gets a new port every run.
  proxy = await startAliasProxy({ upstream: { host: SERVER.host, port: SERVER.port }, aliases: {} });
});
afterAll(() => proxy.close());

/** One run's global setup, as a preset runs it, on the configured server (directly or through the proxy). */
async function setup(
  overrides: PgtwinConfig & {
    database?: string;
    viaProxy?: boolean;
    rebuild?: boolean;
    workers?: number;
  } = {},
) {
  const { database = testDb, viaProxy = false, rebuild, workers, ...config } = overrides;
  const port = viaProxy ? proxy.port : SERVER.port;
  const twin = await runGlobalSetup({
    ...project.options({
      ...config,
      provider: 'server',
      test: { host: SERVER.host, port, user: SERVER.user, database },
      admin: { host: SERVER.host, port, user: SERVER.user, database: 'postgres' },
    }),
    logger: silentLogger,
    rebuild,
    workers,
  });
  created.add(twin.template.database);
  created.add(database);
  for (const worker of twin.workers) created.add(worker.database);
  return twin;
}

async function withTestClient<T>(
  twin: TwinSetup,
  work: (sql: (text: string) => Promise<unknown>) => Promise<T>,
) {
  const client = await connect(twin.test, 'test');
  try {
    return await work((text) => client.query(text));
  } finally {
    await client.end();
  }
}

/** Rewrites a prompt as it was: the row count stays, only the row's transaction id tells. */
function rewritePrompt(which: 'min' | 'max') {
  return queryDatabase(
    testDb,
    `UPDATE public.prompts SET name = name WHERE id = (SELECT ${which}(id) FROM public.prompts)`,
  );
}

/** Runs the next setup and closes it; returns whether it copied the test database again. */
async function nextRunCopies(): Promise<boolean> {
  const next = await setup();
  await next.close();
  return next.copied;
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

async function markerOf(database: string) {
  const client = await connect((await project.reconfigure({})).admin, 'admin');
  try {
    return await readMarker(client, database);
  } finally {
    await client.end();
  }
}

describe('warm starts', () => {
  it('reuses the template for another test database name and another port of the same server', async () => {
    const first = await setup();
    const template = first.template.database;
    await first.close();
    expect(first.reused).toBe(false);

    const other = await setup({ database: uniqueName('warm_other'), viaProxy: true });
    await other.close();
    expect(other.test.port).toBe(proxy.port);
    expect([other.reused, other.template.database, other.fingerprint]).toEqual([
      true,
      template,
      first.fingerprint,
    ]);
  });

  it('keeps a test database the previous run left clean, without copying, with its sequences put back', async () => {
    const run = await setup();
    // A running run's database is never marked clean: a crash now leaves it to be copied again.
    expect((await markerOf(testDb))?.clean).toBeUndefined();
    const before = await queryDatabase<{ v: string }>(
      testDb,
      `SELECT last_value::text AS v FROM public.prompts_id_seq`,
    );
    // Rolled back, as a test's insert is; the sequence moves all the same.
    await withTestClient(run, async (sql) => {
      await sql('BEGIN');
      await sql(`SELECT nextval('public.prompts_id_seq')`);
      await sql('ROLLBACK');
    });
    await run.close();
    expect((await markerOf(testDb))?.clean).toBe(true);

    const oid = await databaseOid(testDb);
    const next = await setup();
    await next.close();
    expect([next.reused, next.copied]).toEqual([true, false]);
    expect(await databaseOid(testDb)).toBe(oid);
    expect(await queryDatabase(testDb, `SELECT last_value::text AS v FROM public.prompts_id_seq`)).toEqual(
      before,
    );
  });

  it('keeps a database whose sequence moved between two runs, outside any test, and puts the sequence back', async () => {
    await (await setup()).close();
    const sequence = `SELECT last_value::text AS v, is_called AS called FROM public.prompts_id_seq`;
    const left = await queryDatabase(testDb, sequence);
    // nextval is not rolled back, and logs (taking a transaction id) only every 32 values.
    await queryDatabase(testDb, `SELECT nextval('public.prompts_id_seq')`);
    expect(await queryDatabase(testDb, sequence)).not.toEqual(left);

    const next = await setup();
    const atStart = await queryDatabase(testDb, sequence);
    await next.close();
    expect(next.copied).toBe(false);
    expect(atStart).toEqual(left);
  });

  it('copies again after a run that committed rows outside the tests, and the rows are gone', async () => {
    const run = await setup();
    await withTestClient(run, (sql) =>
      sql(`INSERT INTO public.clients (name, slug) VALUES ('leaked', 'leaked')`),
    );
    await run.close();
    expect((await markerOf(testDb))?.clean).toBeUndefined();

    const next = await setup();
    const rows = await queryDatabase(testDb, `SELECT 1 FROM public.clients WHERE name = 'leaked'`);
    await next.close();
    expect(next.copied).toBe(true);
    expect(rows).toEqual([]);
  });

  it('a run that builds its template takes the copy’s counts from the build, and they are exact', async () => {
    const built = await setup({ rebuild: true });
    expect([built.reused, built.copied]).toEqual([false, true]);
    const recorded = (await markerOf(testDb))!.copyCounts!;
    const client = await connect(built.test, 'test');
    const counted = await countContents(client).finally(() => client.end());
    await built.close();
    expect(recorded.template).toBe(await databaseOid(built.template.database));
    expect({ tables: recorded.tables, catalogs: recorded.catalogs }).toEqual(counted);
    expect(recorded.tables['public.prompts']).toBeGreaterThan(0);
    // Counts one off would have made this run, which committed nothing, unclean.
    expect((await markerOf(testDb))?.clean).toBe(true);
  });

  it('after a copy, takes the counts an earlier copy of the same template recorded, and drops a record found wrong', async () => {
    const leak = (twin: TwinSetup, slug: string) =>
      withTestClient(twin, (sql) =>
        sql(`INSERT INTO public.clients (name, slug) VALUES ('${slug}', '${slug}')`),
      );
    // A run that leaks, so the next one copies: that copy's counts are recorded under the template's OID.
    const leaking = await setup();
    await leak(leaking, 'r1');
    await leaking.close();
    const copied = await setup();
    expect(copied.copied).toBe(true);
    const recorded = (await markerOf(testDb))!.copyCounts!;
    expect(recorded.template).toBe(await databaseOid(copied.template.database));
    expect(recorded.tables['public.prompts']).toBeGreaterThan(0);
    await leak(copied, 'r2');
    await copied.close();

    // The next copy takes the record, not a count: with one count off, a run that commits nothing is not
    // clean, and the record is dropped so the copy after it counts again.
    const marker = (await markerOf(testDb))!;
    const wrong = {
      ...recorded,
      tables: { ...recorded.tables, 'public.clients': recorded.tables['public.clients']! + 1 },
    };
    await adminQuery(
      `COMMENT ON DATABASE "${testDb}" IS ${quoteLiteral(`pgtwin:${JSON.stringify({ ...marker, copyCounts: wrong })}`)}`,
    );
    const misled = await setup();
    expect(misled.copied).toBe(true);
    await misled.close();
    expect((await markerOf(testDb))?.clean).toBeUndefined();
    expect((await markerOf(testDb))?.copyCounts).toBeUndefined();

    expect(await nextRunCopies()).toBe(true);
    expect((await markerOf(testDb))?.clean).toBe(true);
    expect((await markerOf(testDb))?.copyCounts).toEqual(recorded);
  });

  it('copies again when rows were written between two runs, outside any run', async () => {
    await (await setup()).close();
    expect((await markerOf(testDb))?.clean).toBe(true);
    // psql, or an application server left pointing at the test database between runs.
    await queryDatabase(testDb, `INSERT INTO public.clients (name, slug) VALUES ('between', 'between')`);
    await queryDatabase(testDb, `DELETE FROM public.clients WHERE name = 'between'`);
    await rewritePrompt('min');
    expect(await nextRunCopies()).toBe(true);
  });

  it('after several runs kept without copying, still sees a row rewritten between two of them', async () => {
    await (await setup()).close();
    const kept = await setup();
    await kept.close();
    const keptAgain = await setup();
    await keptAgain.close();
    expect([kept.copied, keptAgain.copied]).toEqual([false, false]);
    // Same row count: only the rewritten row's transaction id tells, against the baseline the last run left.
    await rewritePrompt('max');
    expect(await nextRunCopies()).toBe(true);
  });

  it('after a setup that runs no test (pgtwin setup), keeps the database and still sees a row written since', async () => {
    const first = await setup();
    // Written while that setup runs, before it stamps the database: the state it stamps is the one it started from.
    await queryDatabase(testDb, `INSERT INTO public.clients (name, slug) VALUES ('during', 'during')`);
    await first.close({ testsRan: false });
    expect((await markerOf(testDb))?.clean).toBe(true);
    const afterWrite = await setup();
    await afterWrite.close({ testsRan: false });
    expect(afterWrite.copied).toBe(true);
    expect(await queryDatabase(testDb, `SELECT 1 FROM public.clients WHERE name = 'during'`)).toEqual([]);

    const kept = await setup();
    await kept.close({ testsRan: false });
    expect(kept.copied).toBe(false);
    await rewritePrompt('max');
    expect(await nextRunCopies()).toBe(true);
  });

  it('copies again after a run that committed DDL outside the tests', async () => {
    const run = await setup();
    await withTestClient(run, (sql) => sql('ALTER TABLE public.clients ADD COLUMN leaked_column text'));
    await run.close();

    const next = await setup();
    const columns = await queryDatabase(
      testDb,
      `SELECT 1 FROM information_schema.columns WHERE column_name = 'leaked_column'`,
    );
    await next.close();
    expect(next.copied).toBe(true);
    expect(columns).toEqual([]);
  });

  it('copies again after a run in which a test file opted out of isolation', async () => {
    const clean = await setup();
    await clean.close();
    const run = await setup();
    expect(run.copied).toBe(false);
    // What pgtwin.isolation(false) does in a worker: a scratch copy for the file, dropped after it.
    const copies = await ReadyCopies.forWorker(run.handoff());
    await copies.release((await copies.take()).target.database);
    await copies.settle();
    await run.close();
    expect((await markerOf(testDb))?.clean).not.toBe(true);

    const next = await setup();
    await next.close();
    expect(next.copied).toBe(true);
  });

  it('keeps the worker databases a run left clean, copies one it leaked into, drops surplus and opted-out ones', async () => {
    const database = uniqueName('warm_workers');
    const [w1, w2, w3] = [1, 2, 3].map((id) => `${database}_w${id}`);
    const oids = (names: string[]) => Promise.all(names.map(databaseOid));
    const first = await setup({ database, workers: 2 });
    await first.close();
    const firstOids = await oids([w1!, w2!]);
    expect((await markerOf(w1!))?.clean).toBe(true);

    const second = await setup({ database, workers: 2 });
    expect(await oids([w1!, w2!])).toEqual(firstOids);
    // A running run's worker database is never marked clean: a crash now leaves it to be copied again.
    expect((await markerOf(w1!))?.clean).toBeUndefined();
    await queryDatabase(w2!, `INSERT INTO public.clients (name, slug) VALUES ('Leaked', 'leaked-w2')`);
    await second.close();
    expect((await markerOf(w1!))?.clean).toBe(true);
    expect(await markerOf(w2!)).toBeUndefined();

    const third = await setup({ database, workers: 3 });
    expect(third.workers.map((worker) => worker.database)).toEqual([w1, w2, w3]);
    expect(await databaseOid(w1!)).toBe(firstOids[0]);
    const leaked = `SELECT count(*)::int AS n FROM public.clients WHERE slug = 'leaked-w2'`;
    expect(await queryDatabase(w2!, leaked)).toEqual([{ n: 0 }]);
    await third.close();
    for (const name of [w1!, w2!, w3!]) expect((await markerOf(name))?.clean).toBe(true);

    const fourth = await setup({ database, workers: 2 });
    try {
      expect(await markerOf(w3!)).toBeUndefined();
      expect(await databaseOid(w1!)).toBe(firstOids[0]);
      // A test file of worker 2 opts out, and commits: no worker database of the run can be left clean.
      const copies = new ReadyCopies({
        config: fourth.config,
        template: fourth.template.database,
        run: fourth.handoff().run!,
        database: w2!,
        testDatabase: database,
      });
      await copies.release((await copies.take()).target.database);
      await copies.settle();
    } finally {
      await fourth.close();
    }
    expect([await markerOf(w1!), await markerOf(w2!)]).toEqual([undefined, undefined]);
  });

  it('has dropped the template and test database a rebuild replaced by the time the setup returns', async () => {
    const first = await setup();
    await first.close();
    const replaced = [await databaseOid(first.template.database), await databaseOid(testDb)];
    const rebuilt = await setup({ rebuild: true });
    try {
      expect(rebuilt.template.database).toBe(first.template.database);
      const { rows } = await adminQuery('SELECT datname FROM pg_database WHERE oid = ANY($1::oid[])', [
        replaced,
      ]);
      expect(rows).toEqual([]);
    } finally {
      await rebuilt.close();
    }
  });

  it('rebuilds when a helper imported by the factories module changes, and refresh() sees the edit', async () => {
    const helper = path.join(project.rootDir, 'warm-helper.ts');
    await writeFile(helper, 'export const n = 1;\n');
    await writeFile(
      path.join(project.rootDir, 'warm-factories.ts'),
      "import { n } from './warm-helper.js';\nexport const factories = n > 0 ? {} : {};\n",
    );
    const config = { factories: 'warm-factories.ts' };
    const run = await setup(config);
    const template = run.template.database;
    expect(run.inputs.files).toContain(helper);
    expect(await run.refresh()).toBe(false);
    await writeFile(helper, 'export const n = 2;\n');
    expect(await run.refresh()).toBe(true);
    created.add(run.template.database);
    expect(run.template.database).not.toBe(template);
    expect(run.reused).toBe(false);
    await run.close();

    // A new run after the edit lands on the template refresh() built.
    const next = await setup(config);
    await next.close();
    expect([next.reused, next.template.database]).toEqual([true, run.template.database]);
  });
});

async function databaseOid(name: string): Promise<string> {
  const { rows } = await adminQuery<{ oid: string }>('SELECT oid::text FROM pg_database WHERE datname = $1', [
    name,
  ]);
  return rows[0]!.oid;
}
