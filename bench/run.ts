/**
 * pgtwin's speed benchmark: `npm run bench`. Bundled first (like bench/mirror-memory.ts), then run:
 *
 *   esbuild bench/run.ts --bundle --platform=node --format=esm --packages=external --outfile=bench/out/run.mjs
 *   node --expose-gc bench/out/run.mjs
 *
 * Builds the contentgen fixture at a realistic size on the server of PGTWIN_TEST_SERVER_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres) and measures, side by side: cold setup against
 * pg_dump | psql, warm setup against cold, clone strategies and per-worker clones, the isolation engine
 * against raw pg, pg-transactional-tests and TRUNCATE, seed and mirror throughput. Writes
 * bench/results.json and bench/RESULTS.md. Every database it creates is dropped at the end.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadFixtureData, type FixtureSize } from '../fixtures/contentgen/index.js';
import { resolveConfig } from '../src/config/index.js';
import { connect } from '../src/connection/connect.js';
import { enableIsolation } from '../src/isolation/index.js';
import { syncTables, tableChecksums } from '../src/mirror/index.js';
import { computeFingerprint } from '../src/provision/twin-fingerprint.js';
import type { CloneStrategy } from '../src/provision/database-lifecycle.js';
import { cloneTemplate, dropTemplate, ensureTemplate } from '../src/provision/template-store.js';
import { prepareWorkerDatabases } from '../src/provision/worker-database.js';
import { loadSeedData } from '../src/seed/index.js';
import { cloneStructure, structureFingerprint } from '../src/structure/index.js';
import { selectionFromConfig } from '../src/structure/schema-selection.js';
import type { MirrorMeasurement } from './mirror-memory.js';
import { readSources, twinBuilder } from '../test/speed/twin-steps.js';
import { startRoundTripProxy } from './round-trip-proxy.js';

const SERVER_URL = process.env.PGTWIN_TEST_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const server = new URL(SERVER_URL);
const SERVER = {
  host: server.hostname,
  port: Number(server.port || 5432),
  user: decodeURIComponent(server.username),
};
const HERE = path.dirname(fileURLToPath(import.meta.url));
const BENCH_DIR = path.basename(HERE) === 'out' ? path.dirname(HERE) : HERE;
const run = promisify(execFile);

/** ≥ 100,000 rows in the mirrored tables (object_models + prompts), both project schemas populated. */
const SIZE: FixtureSize = {
  objectModels: 20_000,
  prompts: 100_000,
  clients: 40,
  // FIXTURE_SIZES.large has 200, whose budgets overflow numeric(24,10) above 56 projects.
  projects: 50,
  entriesPerProject: 20_000,
  usageRows: 100_000,
  seed: 1,
};
const MIRRORED = ['public.object_models', 'public.prompts'];
const RUNS = { cold: 3, warm: 5, clone: 3, seed: 7, mirror: 3 };
const ISOLATION = { tests: 300, statements: 20 };

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const started = performance.now();
  const value = await fn();
  return [performance.now() - started, value];
}

function databaseUrl(database: string): string {
  return Object.assign(new URL(SERVER_URL), { pathname: `/${database}` }).toString();
}

async function admin<R extends pg.QueryResultRow = pg.QueryResultRow>(
  first: string,
  second: string | unknown[] = [],
) {
  // admin(sql, params?) on the maintenance database, or admin(url, sql) on another one.
  const [url, sql, params] = typeof second === 'string' ? [first, second, []] : [SERVER_URL, first, second];
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Waits (10 s at most) until no autovacuum worker runs: on 2 cores one analysing the tables a step just
 * loaded takes a third of the CPU from whatever is measured next, at random.
 */
async function autovacuumIdle(): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 100) {
    const [{ workers }] = (await admin<{ workers: number }>(
      `SELECT count(*)::int AS workers FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`,
    )) as [{ workers: number }];
    if (workers === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function sh(command: string): Promise<void> {
  await run('bash', ['-o', 'pipefail', '-c', command], { maxBuffer: 64 * 2 ** 20 });
}

// ---------------------------------------------------------------------------------------------- isolation

type Engine = 'raw' | 'pgtwin' | 'pg-transactional-tests' | 'truncate';
interface IsolationMeasurement {
  engine: Engine;
  /** Mean ms per test with 1 and with `statements` statements. */
  msPerTest: { one: number; many: number };
  /** Round trips per test with 1 and with `statements` statements. */
  tripsPerTest: { one: number; many: number };
}

/** Runs in a child process per engine: engines patch `pg` globally. */
async function measureIsolation(engine: Engine, database: string): Promise<IsolationMeasurement> {
  const proxy = await startRoundTripProxy(SERVER);
  const url = Object.assign(new URL(databaseUrl(database)), { port: String(proxy.port) }).toString();
  const tables = (
    await admin<{ name: string }>(
      databaseUrl(database),
      `SELECT string_agg(quote_ident(schemaname) || '.' || quote_ident(tablename), ', ') AS name FROM pg_tables
       WHERE schemaname = 'public' OR schemaname LIKE 'project\\_%'`,
    ).catch(() => [{ name: '' }])
  )[0]!.name;
  let begin = async () => undefined as unknown;
  let end = async () => undefined as unknown;
  let close = async () => undefined as unknown;
  if (engine === 'pgtwin') {
    const isolation = await enableIsolation({ connectionString: url, detectLeaks: false });
    begin = () => isolation.begin();
    end = () => isolation.rollback();
    close = () => isolation.close();
  }
  const transactional =
    engine === 'pg-transactional-tests'
      ? (await import('pg-transactional-tests')).testTransaction
      : undefined;
  if (transactional) {
    await transactional.start();
    begin = async () => transactional.start();
    end = () => transactional.rollback();
    close = () => transactional.close();
  }
  const app = new pg.Client({ connectionString: url });
  await app.connect();
  if (engine === 'truncate') {
    const cleaner = new pg.Client({ connectionString: url });
    await cleaner.connect();
    end = () => cleaner.query(`TRUNCATE ${tables} RESTART IDENTITY CASCADE`);
    close = () => cleaner.end();
  }
  const test = async (statements: number) => {
    await begin();
    for (let i = 0; i < statements; i++) {
      if (i % 2 === 0)
        await app.query('INSERT INTO public.clients (name, slug) VALUES ($1, $2)', [
          `bench ${i}`,
          `bench-${i}-${Math.floor(Math.random() * 1e12)}`,
        ]);
      else await app.query('SELECT id, name FROM public.clients WHERE slug = $1', [`bench-${i}`]);
    }
    await end();
  };
  const measure = async (statements: number) => {
    for (let i = 0; i < 20; i++) await test(statements); // warm-up
    proxy.reset();
    const started = performance.now();
    for (let i = 0; i < ISOLATION.tests; i++) await test(statements);
    return { ms: (performance.now() - started) / ISOLATION.tests, trips: proxy.count() / ISOLATION.tests };
  };
  const one = await measure(1);
  const many = await measure(ISOLATION.statements);
  await close();
  await app.end();
  await proxy.close();
  return {
    engine,
    msPerTest: { one: round(one.ms, 3), many: round(many.ms, 3) },
    tripsPerTest: { one: round(one.trips, 2), many: round(many.trips, 2) },
  };
}

async function isolationInChild(engine: Engine, database: string): Promise<IsolationMeasurement> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'isolation', engine, database], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`isolation bench for ${engine} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as IsolationMeasurement;
}

// -------------------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const suffix = `${process.pid}`;
  const names = {
    production: `pgtwin_bench_prod_${suffix}`,
    test: `pgtwin_bench_test_${suffix}`,
    dump: `pgtwin_bench_dump_${suffix}`,
    structure: `pgtwin_bench_struct_${suffix}`,
  };
  const extra = new Set<string>();
  const rootDir = await mkdtemp(path.join(tmpdir(), 'pgtwin-bench-'));
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const startedAll = performance.now();
  const templates = new Set<string>();

  try {
    log(`fixture: ${JSON.stringify(SIZE)}`);
    await admin(`CREATE DATABASE "${names.production}"`);
    const [fixtureMs] = await timed(() => createProduction(names.production));
    await sh(`psql ${SERVER_URL.replace(/\/[^/]*$/, `/${names.production}`)} -qc 'VACUUM ANALYZE'`);
    const counts = await rowCounts(names.production);
    log(`fixture built in ${round(fixtureMs / 1000)} s: ${JSON.stringify(counts)}`);

    // A typical suite seed (1,000 rows), and the 10,000-row seed of the throughput test.
    await writeFile(path.join(rootDir, 'seed.json'), JSON.stringify(seedDocument(100, 899, 'suite')));
    await writeFile(path.join(rootDir, 'large.json'), JSON.stringify(seedDocument(1, 9998, 'large')));
    const config = await resolveConfig({
      rootDir,
      configFile: false,
      env: {},
      seeds: 'seed.json',
      production: { ...SERVER, database: names.production },
      test: { ...SERVER, database: names.test },
      admin: { ...SERVER, database: 'postgres' },
    });
    const build = twinBuilder(config);

    // ---- cold: fingerprint + build (clone structure, mirror, seed) + publish + clone, vs pg_dump | psql
    const cold: { totalMs: number; fingerprintMs: number; buildMs: number; cloneMs: number }[] = [];
    for (let i = 0; i < RUNS.cold; i++) {
      const started = performance.now();
      const [fingerprintMs, fingerprint] = await timed(async () =>
        computeFingerprint(config, await readSources(config)),
      );
      const [buildMs, lease] = await timed(() =>
        ensureTemplate(config, fingerprint, build, { rebuild: true }),
      );
      templates.add(lease.template);
      const [cloneMs] = await timed(() => cloneTemplate(config, lease.template, names.test));
      await lease.release();
      cold.push({ totalMs: performance.now() - started, fingerprintMs, buildMs, cloneMs });
      log(`cold ${i + 1}: ${Math.round(cold.at(-1)!.totalMs)} ms`);
    }
    const dump: number[] = [];
    const mirrored = MIRRORED.map((table) => `-t ${table}`).join(' ');
    const from = `-h ${SERVER.host} -p ${SERVER.port} -U ${SERVER.user}`;
    for (let i = 0; i < RUNS.cold; i++) {
      await admin(`DROP DATABASE IF EXISTS "${names.dump}"`);
      const [ms] = await timed(async () => {
        await admin(`CREATE DATABASE "${names.dump}"`);
        await sh(
          `pg_dump ${from} --schema-only ${names.production} | psql ${from} -q -v ON_ERROR_STOP=1 ${names.dump} >/dev/null`,
        );
        await sh(
          `pg_dump ${from} --data-only ${mirrored} ${names.production} | psql ${from} -q -v ON_ERROR_STOP=1 ${names.dump} >/dev/null`,
        );
      });
      dump.push(ms);
      log(`pg_dump | psql ${i + 1}: ${Math.round(ms)} ms`);
    }

    // ---- warm: nothing changed
    const warm: { totalMs: number; fingerprintMs: number; leaseMs: number; cloneMs: number }[] = [];
    let template = '';
    for (let i = 0; i < RUNS.warm; i++) {
      const started = performance.now();
      const [fingerprintMs, fingerprint] = await timed(async () =>
        computeFingerprint(config, await readSources(config)),
      );
      const [leaseMs, lease] = await timed(() => ensureTemplate(config, fingerprint, build));
      if (lease.built) throw new Error('warm run rebuilt the template: the fingerprint is not stable');
      template = lease.template;
      const [cloneMs] = await timed(() => cloneTemplate(config, lease.template, names.test));
      await lease.release();
      warm.push({ totalMs: performance.now() - started, fingerprintMs, leaseMs, cloneMs });
    }
    log(`warm: ${Math.round(median(warm.map((w) => w.totalMs)))} ms`);

    // ---- what the fingerprint's data signal costs: exact checksums vs catalog statistics
    const production = await connect(config.production, 'production');
    const checksumMs = median(
      await repeat(
        5,
        async () => (await timed(() => tableChecksums(production, MIRRORED, { quick: true })))[0],
      ),
    );
    const md5ChecksumMs = median(
      await repeat(5, async () => (await timed(() => tableChecksums(production, MIRRORED)))[0]),
    );
    const structureMs = median(
      await repeat(
        5,
        async () => (await timed(() => structureFingerprint(production, selectionFromConfig(config))))[0],
      ),
    );
    const statsMs = median(
      await repeat(
        5,
        async () =>
          (
            await timed(() =>
              production.query(
                `SELECT relid::regclass::text, n_tup_ins, n_tup_upd, n_tup_del, pg_relation_size(relid)
               FROM pg_stat_user_tables WHERE relid = ANY($1::regclass[])`,
                [MIRRORED],
              ),
            )
          )[0],
      ),
    );
    await production.end();

    // ---- clone strategies and per-worker clones
    const strategies: Record<CloneStrategy, { singleMs: number; fourWorkersMs: number }> = {
      FILE_COPY: { singleMs: 0, fourWorkersMs: 0 },
      WAL_LOG: { singleMs: 0, fourWorkersMs: 0 },
    };
    const workerCount = 4;
    for (const strategy of ['FILE_COPY', 'WAL_LOG'] as const) {
      strategies[strategy].singleMs = median(
        await repeat(
          RUNS.clone,
          async () => (await timed(() => cloneTemplate(config, template, names.test, { strategy })))[0],
        ),
      );
      strategies[strategy].fourWorkersMs = median(
        await repeat(RUNS.clone, async () => {
          const [ms, workers] = await timed(() =>
            prepareWorkerDatabases(config, template, workerCount, { strategy }),
          );
          for (const worker of workers) extra.add(worker.target.database);
          return ms;
        }),
      );
      log(`clone ${strategy}: ${JSON.stringify(strategies[strategy])}`);
    }
    const templateBytes = Number(
      (await admin<{ size: string }>('SELECT pg_database_size($1) AS size', [template]))[0]!.size,
    );

    // ---- isolation engines, each in its own process on its own worker database
    const isolation: IsolationMeasurement[] = [];
    for (const engine of ['raw', 'pgtwin', 'pg-transactional-tests', 'truncate'] as const) {
      await cloneTemplate(config, template, names.test);
      isolation.push(await isolationInChild(engine, names.test));
      log(`isolation ${engine}: ${JSON.stringify(isolation.at(-1))}`);
    }

    // ---- seed throughput of the 10,000-row file: as the pipeline's build loads it (on the connection that has
    // just cloned the structure and mirrored the tables), and on a new connection to a fresh clone of the twin
    // beside psql \copy of the very same rows into another fresh clone (the database's own floor).
    const seed = { pipeline: [] as number[], fresh: [] as number[], psqlCopy: [] as number[] };
    const seedRows = path.join(rootDir, 'large-entries.tsv');
    for (let i = 0; i < RUNS.seed; i++) {
      await admin(`DROP DATABASE IF EXISTS "${names.dump}"`);
      await admin(`CREATE DATABASE "${names.dump}"`);
      {
        const source = await connect(config.production, 'production');
        const target = new pg.Client({ connectionString: databaseUrl(names.dump) });
        await target.connect();
        try {
          await cloneStructure(source, target, { selection: selectionFromConfig(config) });
          await syncTables(source, target, { policy: config });
          await autovacuumIdle();
          const [ms, result] = await timed(() => loadSeedData(target, 'large.json', { rootDir }));
          seed.pipeline.push(result.rows / (ms / 1000));
        } finally {
          await Promise.all([source.end(), target.end()]);
        }
      }

      const target = await cloneTemplate(config, template, names.test);
      const client = new pg.Client(target.clientConfig());
      await client.connect();
      await autovacuumIdle();
      const [ms, result] = await timed(() => loadSeedData(client, 'large.json', { rootDir }));
      seed.fresh.push(result.rows / (ms / 1000));
      await client.end();
      await sh(
        `psql ${databaseUrl(names.test)} -Xqc "\\copy (SELECT project_id, object_model_id, slug, title, body, data, tags, score FROM project_alpha.content_entries WHERE project_id = (SELECT id FROM public.projects WHERE slug = 'large-demo') ORDER BY id) TO '${seedRows}'"`,
      );
      await cloneTemplate(config, template, names.test);
      await autovacuumIdle();
      // psql's own \timing of each statement: no process start or connection, as on pgtwin's side.
      const { stdout } = await run('psql', [
        databaseUrl(names.test),
        '-Xq',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        '\\timing on',
        '-c',
        "BEGIN; INSERT INTO public.clients (name, slug) VALUES ('Acme', 'large'); INSERT INTO public.projects (client_id, slug, name) SELECT id, 'large-demo', 'Demo' FROM public.clients WHERE slug = 'large'",
        '-c',
        `\\copy project_alpha.content_entries (project_id, object_model_id, slug, title, body, data, tags, score) FROM '${seedRows}'`,
        '-c',
        'COMMIT',
      ]);
      const copyMs = [...stdout.matchAll(/Time: ([\d.]+) ms/g)].reduce(
        (sum, match) => sum + Number(match[1]),
        0,
      );
      seed.psqlCopy.push(result.rows / (copyMs / 1000));
    }
    log(
      `seed: pipeline ${Math.round(median(seed.pipeline))} rows/s, fresh clone ${Math.round(median(seed.fresh))} rows/s, psql \\copy ${Math.round(median(seed.psqlCopy))} rows/s`,
    );

    // ---- mirror throughput on the fixture's mirrored tables, vs pg_dump --data-only | psql
    await admin(`CREATE DATABASE "${names.structure}"`);
    {
      const source = await connect(config.production, 'production');
      const target = new pg.Client({ connectionString: databaseUrl(names.structure) });
      await target.connect();
      await cloneStructure(source, target, { selection: selectionFromConfig(config) });
      await Promise.all([source.end(), target.end()]);
    }
    const mirroredRows = counts['public.object_models']! + counts['public.prompts']!;
    const mirrorRates: number[] = [];
    const dumpDataRates: number[] = [];
    for (let i = 0; i < RUNS.mirror; i++) {
      await admin(`DROP DATABASE IF EXISTS "${names.dump}"`);
      await admin(`CREATE DATABASE "${names.dump}" TEMPLATE "${names.structure}"`);
      const source = await connect(config.production, 'production');
      const target = new pg.Client({ connectionString: databaseUrl(names.dump) });
      await target.connect();
      const [ms] = await timed(() => syncTables(source, target, { policy: config }));
      await Promise.all([source.end(), target.end()]);
      mirrorRates.push(mirroredRows / (ms / 1000));
      await admin(`DROP DATABASE "${names.dump}"`);
      await admin(`CREATE DATABASE "${names.dump}" TEMPLATE "${names.structure}"`);
      const [dumpMs] = await timed(() =>
        sh(
          `pg_dump ${from} --data-only ${mirrored} ${names.production} | psql ${from} -q -v ON_ERROR_STOP=1 ${names.dump} >/dev/null`,
        ),
      );
      dumpDataRates.push(mirroredRows / (dumpMs / 1000));
    }
    log(
      `mirror: ${Math.round(median(mirrorRates))} rows/s, pg_dump|psql ${Math.round(median(dumpDataRates))} rows/s`,
    );

    // ---- mirror memory, 1,000,000 rows, in a process of its own
    log('mirror memory: 1,000,000 rows');
    const memory = await mirrorMemory();

    const coldMs = median(cold.map((c) => c.totalMs));
    const dumpMs = median(dump);
    const warmMs = median(warm.map((w) => w.totalMs));
    const byEngine = Object.fromEntries(isolation.map((m) => [m.engine, m])) as Record<
      Engine,
      IsolationMeasurement
    >;
    const perTest = (engine: Engine) => byEngine[engine].msPerTest.one - byEngine.raw.msPerTest.one;
    const perStatement = (engine: Engine) =>
      (byEngine[engine].msPerTest.many -
        byEngine[engine].msPerTest.one -
        (byEngine.raw.msPerTest.many - byEngine.raw.msPerTest.one)) /
      (ISOLATION.statements - 1);
    const extraTrips = (engine: Engine) =>
      (byEngine[engine].tripsPerTest.many - byEngine[engine].tripsPerTest.one) / (ISOLATION.statements - 1) -
      1;
    const results = {
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        node: process.version,
        server: (await admin<{ v: string }>(`SELECT current_setting('server_version') AS v`))[0]!.v,
      },
      fixture: { size: SIZE, rows: counts, mirroredRows, buildSeconds: round(fixtureMs / 1000) },
      runs: RUNS,
      setup: {
        coldMs: round(coldMs),
        coldBreakdownMs: {
          fingerprint: round(median(cold.map((c) => c.fingerprintMs))),
          build: round(median(cold.map((c) => c.buildMs))),
          clone: round(median(cold.map((c) => c.cloneMs))),
        },
        pgDumpPsqlMs: round(dumpMs),
        coldVsPgDump: round(coldMs / dumpMs, 2),
        warmMs: round(warmMs),
        warmBreakdownMs: {
          fingerprint: round(median(warm.map((w) => w.fingerprintMs))),
          lease: round(median(warm.map((w) => w.leaseMs))),
          clone: round(median(warm.map((w) => w.cloneMs))),
        },
        warmVsCold: round(warmMs / coldMs, 3),
      },
      fingerprint: {
        structureMs: round(structureMs),
        checksumMs: round(checksumMs),
        md5ChecksumMs: round(md5ChecksumMs),
        statsMs: round(statsMs, 2),
      },
      clone: {
        templateMb: round(templateBytes / 2 ** 20),
        strategies: Object.fromEntries(
          Object.entries(strategies).map(([name, s]) => [
            name,
            {
              singleMs: round(s.singleMs),
              fourWorkersMs: round(s.fourWorkersMs),
              perWorkerMs: round(s.fourWorkersMs / workerCount),
            },
          ]),
        ),
      },
      isolation: {
        tests: ISOLATION.tests,
        statementsPerTest: ISOLATION.statements,
        engines: isolation,
        perTestOverheadMs: Object.fromEntries(
          (['pgtwin', 'pg-transactional-tests', 'truncate'] as const).map((e) => [e, round(perTest(e), 3)]),
        ),
        perStatementOverheadMs: Object.fromEntries(
          (['pgtwin', 'pg-transactional-tests', 'truncate'] as const).map((e) => [
            e,
            round(perStatement(e), 3),
          ]),
        ),
        extraRoundTripsPerStatement: Object.fromEntries(
          (['raw', 'pgtwin', 'pg-transactional-tests', 'truncate'] as const).map((e) => [
            e,
            round(extraTrips(e), 2),
          ]),
        ),
      },
      seed: {
        rows: 10_000,
        rowsPerSecond: Math.round(median(seed.pipeline)),
        runs: Object.fromEntries(
          Object.entries(seed).map(([name, rates]) => [name, rates.map((rate) => Math.round(rate))]),
        ),
        freshCloneRowsPerSecond: Math.round(median(seed.fresh)),
        psqlCopyRowsPerSecond: Math.round(median(seed.psqlCopy)),
      },
      mirror: {
        rows: mirroredRows,
        rowsPerSecond: Math.round(median(mirrorRates)),
        pgDumpPsqlRowsPerSecond: Math.round(median(dumpDataRates)),
        memory,
      },
      benchSeconds: 0,
    };
    results.benchSeconds = round((performance.now() - startedAll) / 1000);
    await writeFile(path.join(BENCH_DIR, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(path.join(BENCH_DIR, 'RESULTS.md'), renderMarkdown(results));
    log(`done in ${results.benchSeconds} s: bench/results.json, bench/RESULTS.md`);
  } finally {
    for (const name of [...Object.values(names), ...extra])
      await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
    const config = await resolveConfig({
      rootDir,
      configFile: false,
      env: {},
      admin: { ...SERVER, database: 'postgres' },
      test: SERVER,
      production: SERVER,
    });
    // Templates this bench published (its leases are released by now).
    for (const template of templates) await dropTemplate(config, template).catch(() => undefined);
    await rm(rootDir, { recursive: true, force: true });
  }
}

/** The contentgen production (schema.sql, then data of SIZE); read by path, since the bundle moves import.meta.url. */
async function createProduction(database: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl(database) });
  await client.connect();
  try {
    await client.query(
      await readFile(path.join(BENCH_DIR, '..', 'fixtures', 'contentgen', 'schema.sql'), 'utf8'),
    );
    await loadFixtureData(client, SIZE);
  } finally {
    await client.end();
  }
}

async function repeat<T>(times: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < times; i++) out.push(await fn());
  return out;
}

async function rowCounts(database: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl(database) });
  await client.connect();
  try {
    const counts: Record<string, number> = {};
    for (const table of [
      ...MIRRORED,
      'public.llm_usage',
      'project_alpha.content_entries',
      'project_beta.content_entries',
    ]) {
      counts[table] = (
        await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)
      ).rows[0]!.n;
    }
    return counts;
  } finally {
    await client.end();
  }
}

function seedDocument(projects: number, entries: number, slug: string): unknown {
  return {
    'public.clients': [{ $key: 'acme', name: 'Acme', slug }],
    'public.projects': [
      { $key: 'demo', slug: `${slug}-demo`, name: 'Demo', client_id: { $ref: 'public.clients.acme' } },
      // Factory-built slugs would collide with the suite seed's already in the database.
      ...(projects > 1 ? [{ $count: projects - 1, client_id: { $ref: 'public.clients.acme' } }] : []),
    ],
    'project_alpha.content_entries': [
      {
        $count: entries,
        project_id: { $ref: 'public.projects.demo' },
        object_model_id: { $ref: 'public.object_models', where: { name: 'model_1', version: 2 } },
        body: 'Lorem ipsum dolor sit amet',
        data: { words: 5, tags: ['x'] },
        tags: ['news', 'tech'],
        score: '0.5',
      },
    ],
  };
}

async function mirrorMemory(): Promise<MirrorMeasurement | { error: string }> {
  const script = path.join(BENCH_DIR, 'out', 'mirror-memory.mjs');
  try {
    const { stdout } = await run(process.execPath, ['--expose-gc', script, '1000000'], {
      maxBuffer: 2 ** 20,
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as MirrorMeasurement;
  } catch (error) {
    const failed = error as { stdout?: string; message: string };
    // Exit code 1 means the peak passed 150 MB; the measurement is still printed.
    if (failed.stdout?.trim())
      return JSON.parse(failed.stdout.trim().split('\n').pop()!) as MirrorMeasurement;
    return { error: failed.message };
  }
}

type Results = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** ` (runs 41000–58000)`: the range behind a median. */
function spread(runs: number[] | undefined): string {
  return runs && runs.length > 1 ? ` (runs ${Math.min(...runs)}–${Math.max(...runs)})` : '';
}

function renderMarkdown(r: Results): string {
  const met = (ok: boolean) => (ok ? 'met' : '**not met**');
  const iso = r.isolation;
  const mem = r.mirror.memory as MirrorMeasurement & { error?: string };
  const fastest =
    r.clone.strategies.FILE_COPY.singleMs <= r.clone.strategies.WAL_LOG.singleMs ? 'FILE_COPY' : 'WAL_LOG';
  const goals: [string, string, boolean][] = [
    ['cold ≤ 0.5× pg_dump \\| psql', `${r.setup.coldVsPgDump}×`, r.setup.coldVsPgDump <= 0.5],
    ['warm ≤ 0.1× cold', `${r.setup.warmVsCold}×`, r.setup.warmVsCold <= 0.1],
    ['per-test overhead ≤ 1 ms', `${iso.perTestOverheadMs.pgtwin} ms`, iso.perTestOverheadMs.pgtwin <= 1],
    [
      '≤ 1 extra round trip per statement',
      `${iso.extraRoundTripsPerStatement.pgtwin}`,
      iso.extraRoundTripsPerStatement.pgtwin <= 1,
    ],
    [
      'seeds ≥ 50,000 rows/s (10,000-row file, as the pipeline loads it)',
      `${r.seed.rowsPerSecond} rows/s`,
      r.seed.rowsPerSecond >= 50_000,
    ],
    [
      'mirror ≥ pg_dump --data-only \\| psql',
      `${r.mirror.rowsPerSecond} vs ${r.mirror.pgDumpPsqlRowsPerSecond} rows/s`,
      r.mirror.rowsPerSecond >= r.mirror.pgDumpPsqlRowsPerSecond,
    ],
    [
      'mirror < 150 MB RSS for 1M rows',
      mem.error ? mem.error : `${mem.peakRssMb} MB peak`,
      !mem.error && mem.peakRssMb < 150,
    ],
  ];
  const engineRows = iso.engines
    .map(
      (e: IsolationMeasurement) =>
        `| ${e.engine} | ${e.msPerTest.one} | ${e.msPerTest.many} | ${e.tripsPerTest.one} | ${e.tripsPerTest.many} | ${e.engine === 'raw' ? '–' : iso.perTestOverheadMs[e.engine]} | ${e.engine === 'raw' ? '–' : iso.perStatementOverheadMs[e.engine]} | ${iso.extraRoundTripsPerStatement[e.engine]} |`,
    )
    .join('\n');
  return `# pgtwin benchmark

Generated by \`npm run bench\` on ${r.date} (${r.machine.cpus} CPUs, Node ${r.machine.node}, PostgreSQL ${r.machine.server}); whole bench ${r.benchSeconds} s.
Medians of ${r.runs.cold} cold, ${r.runs.warm} warm, ${r.runs.clone} clone, ${r.runs.seed} seed and ${r.runs.mirror} mirror runs.

Fixture: contentgen, ${r.fixture.mirroredRows.toLocaleString('en')} rows in the mirrored tables (${Object.entries(
    r.fixture.rows,
  )
    .map(([t, n]) => `${t} ${(n as number).toLocaleString('en')}`)
    .join(', ')}); template ${r.clone.templateMb} MB.

## Goals

| Goal | Measured | Status |
| --- | --- | --- |
${goals.map(([goal, value, ok]) => `| ${goal} | ${value} | ${met(ok)} |`).join('\n')}

## Setup

| | ms | ratio |
| --- | ---: | ---: |
| pg_dump --schema-only \\| psql, then pg_dump --data-only -t (mirrored) \\| psql | ${r.setup.pgDumpPsqlMs} | 1 |
| pgtwin cold (fingerprint ${r.setup.coldBreakdownMs.fingerprint} + build & publish ${r.setup.coldBreakdownMs.build} + clone ${r.setup.coldBreakdownMs.clone}) | ${r.setup.coldMs} | ${r.setup.coldVsPgDump}× pg_dump |
| pgtwin warm (fingerprint ${r.setup.warmBreakdownMs.fingerprint} + lease ${r.setup.warmBreakdownMs.lease} + clone ${r.setup.warmBreakdownMs.clone}) | ${r.setup.warmMs} | ${r.setup.warmVsCold}× cold |

Fingerprint inputs read from production: structure ${r.fingerprint.structureMs} ms, exact checksums of the mirrored tables ${r.fingerprint.checksumMs} ms${r.fingerprint.md5ChecksumMs ? ` (with md5, as dumps and the drift report take them: ${r.fingerprint.md5ChecksumMs} ms)` : ''} (pg_stat_user_tables counters would take ${r.fingerprint.statsMs} ms but lag, reset and miss nothing-changed-in-count updates, so the exact checksums are used).

## Clones (template ${r.clone.templateMb} MB)

| Strategy | one clone, ms | 4 workers in parallel, ms | per worker, ms |
| --- | ---: | ---: | ---: |
${Object.entries(r.clone.strategies)
  .map(
    ([name, s]) =>
      `| ${name} | ${(s as Results).singleMs} | ${(s as Results).fourWorkersMs} | ${(s as Results).perWorkerMs} |`,
  )
  .join('\n')}

Fastest single clone: ${fastest}.

## Isolation (${iso.tests} tests each; ms per test with 1 and ${iso.statementsPerTest} statements; round trips counted by a proxy)

| Engine | ms/test (1 stmt) | ms/test (${iso.statementsPerTest} stmts) | trips/test (1) | trips/test (${iso.statementsPerTest}) | per-test overhead vs raw, ms | per-statement overhead, ms | extra trips per statement |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${engineRows}

\`raw\`: plain pg, no cleanup (the floor). \`truncate\`: plain pg, then TRUNCATE of every table after each test.

## Throughput

| | rows/s |
| --- | ---: |
| seed (10,000-row file), as the pipeline loads it: after the structure and the mirror, same connection | ${r.seed.rowsPerSecond}${spread(r.seed.runs?.pipeline)} |
| seed, same file, new connection to a fresh clone of the twin | ${r.seed.freshCloneRowsPerSecond ?? '–'}${spread(r.seed.runs?.fresh)} |
| psql \\copy of the same rows into a fresh clone (statement time only) | ${r.seed.psqlCopyRowsPerSecond ?? '–'}${spread(r.seed.runs?.psqlCopy)} |
| mirror (${r.mirror.rows.toLocaleString('en')} rows) | ${r.mirror.rowsPerSecond} |
| pg_dump --data-only \\| psql, same tables | ${r.mirror.pgDumpPsqlRowsPerSecond} |
| mirror, 1,000,000 rows (bench/mirror-memory.ts) | ${mem.error ? mem.error : `${mem.rowsPerSecond}, peak RSS ${mem.peakRssMb} MB`} |

A fresh clone starts with every page and catalog entry cold, which slows psql's COPY as much as pgtwin's loader. There the loader, which also reads the seed file, builds the rows and resolves the references, reaches ${r.seed.psqlCopyRowsPerSecond ? round(r.seed.freshCloneRowsPerSecond / r.seed.psqlCopyRowsPerSecond, 2) : '–'}× the rate of psql \\copy loading a ready-made file of the same rows (PostgreSQL checks its foreign keys row by row, pgtwin's once per key).
`;
}

if (process.argv[2] === 'render') {
  // Re-renders RESULTS.md from results.json, e.g. after a change to the layout.
  const results = JSON.parse(await readFile(path.join(BENCH_DIR, 'results.json'), 'utf8')) as Results;
  results.machine.server ??= (
    await admin<{ v: string }>(`SELECT current_setting('server_version') AS v`)
  )[0]!.v;
  await writeFile(path.join(BENCH_DIR, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(path.join(BENCH_DIR, 'RESULTS.md'), renderMarkdown(results));
} else if (process.argv[2] === 'isolation') {
  const result = await measureIsolation(process.argv[3] as Engine, process.argv[4]!);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else {
  await main();
}
