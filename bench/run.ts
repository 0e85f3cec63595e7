/**
 * pgtwin's speed benchmark: `npm run bench`. Bundled first (like bench/mirror-memory.ts), then run:
 *
 *   esbuild bench/run.ts --bundle --platform=node --format=esm --packages=external --outfile=bench/out/run.mjs
 *   node --expose-gc bench/out/run.mjs            # the whole bench
 *   node bench/out/run.mjs render                  # RESULTS.md again from results.json
 *   node bench/out/run.mjs only pipeline,cli       # some measurements: printed, results.json untouched
 *
 * Builds the contentgen fixture at a realistic size on the server of PGTWIN_TEST_SERVER_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres) and runs each measurement of bench/measurements/ in turn,
 * side by side in one run. Writes bench/results.json and bench/RESULTS.md (bench/render-results.ts).
 * Every database it creates is dropped at the end.
 *
 * `only` takes a comma-separated list of `pipeline` (pg_dump | psql alone), `cold`, `warm`, `cli`,
 * `embedded`, `endpoint`, `isolation` and `workers` (the pipeline is measured too, the setups' denominator;
 * the last three build the template through `warm` first), for profiling a change without the whole bench;
 * it prints their results as JSON and writes nothing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../src/config/index.js';
import { TEMPLATE_PREFIX } from '../src/provision/template-locks.js';
import { dropTemplate } from '../src/provision/template-store.js';
import { admin, BENCH_DIR, round, RUNS, SERVER, type BenchContext } from './bench-context.js';
import { measureCliSetup } from './measurements/cli-setup.js';
import { measureCloneStrategies } from './measurements/clone-strategy.js';
import { measureColdSetup, measurePipeline } from './measurements/cold-setup.js';
import {
  measureConcurrentIsolation,
  measureConcurrentIsolationHere,
} from './measurements/concurrent-isolation.js';
import { measureEmbeddedSetup } from './measurements/embedded-setup.js';
import { measureEndpointLatency } from './measurements/endpoint-latency.js';
import { measureFingerprint } from './measurements/fingerprint.js';
import { measureMirrorThroughput } from './measurements/mirror-throughput.js';
import { measureIsolationEngine, measurePerTestOverhead } from './measurements/per-test-overhead.js';
import { measureReadyCopy } from './measurements/ready-copy.js';
import { measureSeedThroughput } from './measurements/seed-throughput.js';
import { ensureBenchTemplate, measureWarmSetup } from './measurements/warm-setup.js';
import { measureWorkerSetup } from './measurements/worker-setup.js';
import { createProduction, SUITE_SEED_FILE, writeSeedFiles } from './production-fixture.js';
import { renderResults, writeResults } from './render-results.js';
import type { Engine, Results } from './results.js';

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

async function main(only?: Set<string>): Promise<void> {
  const started = performance.now();
  const loadAverage = loadavg().map((n) => round(n, 2)) as [number, number, number];
  const suffix = `${process.pid}`;
  const owned: Owned = {
    names: {
      production: `pgtwin_bench_prod_${suffix}`,
      test: `pgtwin_bench_test_${suffix}`,
      dump: `pgtwin_bench_dump_${suffix}`,
      structure: `pgtwin_bench_struct_${suffix}`,
      cliTest: `pgtwin_bench_cli_${suffix}`,
    },
    extra: new Set(),
    templates: new Set(),
    kept: new Set(
      (
        await admin<{ name: string }>(
          `SELECT datname AS name FROM pg_database WHERE starts_with(datname, '${TEMPLATE_PREFIX}')`,
        )
      ).map((row) => row.name),
    ),
    rootDir: await mkdtemp(path.join(tmpdir(), 'pgtwin-bench-')),
  };
  try {
    const fixture = await createProduction(owned.names.production);
    log(`fixture built in ${fixture.buildSeconds} s: ${JSON.stringify(fixture.rows)}`);
    await writeSeedFiles(owned.rootDir);
    const config = await resolveConfig({
      rootDir: owned.rootDir,
      configFile: false,
      env: {},
      seeds: SUITE_SEED_FILE,
      production: { ...SERVER, database: owned.names.production },
      test: { ...SERVER, database: owned.names.test },
      admin: { ...SERVER, database: 'postgres' },
    });
    const ctx: BenchContext = { ...owned, config, mirroredRows: fixture.mirroredRows, template: '', log };

    if (only) {
      await measureOnly(ctx, only);
      return;
    }
    const cold = await measureColdSetup(ctx);
    const warm = await measureWarmSetup(ctx);
    ctx.template = warm.template;
    const cli = await measureCliSetup(ctx).catch((error: Error) => {
      log(`pgtwin command: skipped: ${error.message}`);
      return { skipped: error.message.split('\n')[0]!.slice(0, 400) };
    });
    const embedded = await measureEmbeddedSetup(ctx, cold.pgDumpPsqlMs);
    const fingerprint = await measureFingerprint(ctx);
    const clone = await measureCloneStrategies(ctx);
    const readyCopy = await measureReadyCopy(ctx);
    const workerSetup = await measureWorkerSetup(ctx);
    const isolation = await measurePerTestOverhead(ctx, fileURLToPath(import.meta.url));
    const endpoint = await measureEndpointLatency(ctx);
    const concurrentIsolation = await measureConcurrentIsolation(ctx, fileURLToPath(import.meta.url));
    const seed = await measureSeedThroughput(ctx);
    const mirror = await measureMirrorThroughput(ctx);

    const [server] = await admin<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    const results: Results = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version, server: server!.v, loadAverage },
      fixture,
      runs: RUNS,
      setup: {
        coldMs: cold.coldMs,
        coldBreakdownMs: cold.breakdownMs,
        pgDumpPsqlMs: cold.pgDumpPsqlMs,
        coldVsPgDump: cold.coldVsPgDump,
        warmMs: warm.warmMs,
        warmBreakdownMs: warm.breakdownMs,
        warmVsCold: round(warm.warmMs / cold.coldMs, 3),
      },
      cli,
      embedded,
      fingerprint,
      clone,
      readyCopy,
      workerSetup,
      isolation,
      endpoint,
      concurrentIsolation,
      seed,
      mirror,
      benchSeconds: round((performance.now() - started) / 1000),
    };
    await writeResults(BENCH_DIR, results);
    log(`done in ${results.benchSeconds} s: bench/results.json, bench/RESULTS.md`);
  } finally {
    await cleanUp(owned);
  }
}

/** The measurements `only` may name. */
const ONLY = ['pipeline', 'cold', 'warm', 'cli', 'embedded', 'endpoint', 'isolation', 'workers'];

/** The measurements of `only`, printed as JSON on stdout; the pipeline first, as each ratio's denominator. */
async function measureOnly(ctx: BenchContext, only: Set<string>): Promise<void> {
  const out: Record<string, unknown> = { loadAverage: loadavg().map((n) => round(n, 2)) };
  const pgDumpPsqlMs = await measurePipeline(ctx);
  out.pgDumpPsqlMs = pgDumpPsqlMs;
  if (only.has('cold')) out.cold = await measureColdSetup(ctx);
  if (only.has('warm') || only.has('endpoint') || only.has('isolation') || only.has('workers')) {
    if (!only.has('cold')) await ensureBenchTemplate(ctx);
    const warm = await measureWarmSetup(ctx);
    ctx.template = warm.template;
    out.warm = warm;
  }
  if (only.has('cli')) out.cli = await measureCliSetup(ctx);
  if (only.has('workers')) out.workerSetup = await measureWorkerSetup(ctx);
  if (only.has('embedded')) out.embedded = await measureEmbeddedSetup(ctx, pgDumpPsqlMs);
  if (only.has('endpoint')) out.endpoint = await measureEndpointLatency(ctx);
  if (only.has('isolation'))
    out.isolation = await measurePerTestOverhead(ctx, fileURLToPath(import.meta.url));
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

/** What the bench creates and drops at the end, whatever happened. */
type Owned = Pick<BenchContext, 'names' | 'extra' | 'templates' | 'kept' | 'rootDir'>;

/**
 * Drops every database the bench made, and the templates it used that were not there before it (its leases
 * are released): a template another project built from the same inputs stays, with the contents it had.
 */
async function cleanUp(ctx: Owned): Promise<void> {
  for (const name of [...Object.values(ctx.names), ...ctx.extra])
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
  const config = await resolveConfig({
    rootDir: ctx.rootDir,
    configFile: false,
    env: {},
    admin: { ...SERVER, database: 'postgres' },
    test: SERVER,
    production: SERVER,
  });
  for (const template of ctx.templates) {
    if (!ctx.kept.has(template)) await dropTemplate(config, template).catch(() => undefined);
  }
  await rm(ctx.rootDir, { recursive: true, force: true });
}

if (process.argv[2] === 'render') {
  const results = JSON.parse(await readFile(path.join(BENCH_DIR, 'results.json'), 'utf8')) as Results;
  await writeResults(BENCH_DIR, results);
  log(`rendered bench/RESULTS.md (${renderResults(results).length} characters)`);
} else if (process.argv[2] === 'concurrent-isolation') {
  // A child of measureConcurrentIsolation: isolation patches pg, so in a process of its own.
  process.stdout.write(`${JSON.stringify(await measureConcurrentIsolationHere(process.argv[3]!))}\n`);
  process.exit(0);
} else if (process.argv[2] === 'isolation') {
  // A child of measurePerTestOverhead: one engine, in a process of its own.
  const result = await measureIsolationEngine(process.argv[3] as Engine, process.argv[4]!);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else if (process.argv[2] === 'only') {
  const only = new Set((process.argv[3] ?? '').split(',').filter(Boolean));
  const unknown = [...only].filter((name) => !ONLY.includes(name));
  if (only.size === 0 || unknown.length > 0)
    throw new Error(
      `bench only: expected a comma-separated list of ${ONLY.join(', ')}; got ${process.argv[3] ?? 'nothing'}`,
    );
  await main(only);
} else {
  await main();
}
