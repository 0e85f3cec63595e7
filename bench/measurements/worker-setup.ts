import { runGlobalSetup } from '../../src/pipeline/global-setup.js';
import { silentLogger } from '../../src/util/logger.js';
import { median, round, SERVER, type BenchContext } from '../bench-context.js';
import { SUITE_SEED_FILE } from '../production-fixture.js';
import type { WorkerSetupResult } from '../results.js';

const WORKERS = 2;
const RUNS = 3;

/**
 * The global setup as a runner with two workers calls it (in process, the bench's template reused): each
 * round runs it on one worker (which drops the worker databases), then on two, which copy the template to
 * theirs, then on two again, which keep them (the previous run left them clean). Medians of the `workers`
 * phase and of the whole setup, the teardown timed apart.
 */
export async function measureWorkerSetup(ctx: BenchContext): Promise<WorkerSetupResult> {
  const once = async (workers: number) => {
    const started = performance.now();
    const twin = await runGlobalSetup({
      rootDir: ctx.rootDir,
      configFile: false,
      env: {},
      seeds: SUITE_SEED_FILE,
      provider: 'server',
      production: { ...SERVER, database: ctx.names.production },
      test: { ...SERVER, database: ctx.names.test },
      admin: { ...SERVER, database: 'postgres' },
      logger: silentLogger,
      workers,
    });
    const setupMs = performance.now() - started;
    for (const worker of twin.workers) ctx.extra.add(worker.database);
    ctx.templates.add(twin.template.database);
    const phase = twin.phases.find((timing) => timing.name === 'workers');
    const closing = performance.now();
    await twin.close();
    return {
      setupMs,
      workersMs: phase?.ms ?? 0,
      teardownMs: performance.now() - closing,
      kept: phase?.detail?.includes('kept') ?? false,
    };
  };
  const copied: Awaited<ReturnType<typeof once>>[] = [];
  const kept: Awaited<ReturnType<typeof once>>[] = [];
  for (let i = 0; i < RUNS; i++) {
    await once(1);
    copied.push(await once(WORKERS));
    kept.push(await once(WORKERS));
  }
  if (copied.some((run) => run.kept) || kept.some((run) => !run.kept))
    throw new Error('worker databases: the first two-worker run kept them, or the second copied them');
  const summary = (runs: typeof copied) => ({
    workersMs: round(median(runs.map((run) => run.workersMs))),
    setupMs: round(median(runs.map((run) => run.setupMs))),
    teardownMs: round(median(runs.map((run) => run.teardownMs))),
  });
  const result = { workers: WORKERS, runs: RUNS, copied: summary(copied), kept: summary(kept) };
  ctx.log(
    `workers: copied ${result.copied.workersMs} ms, kept ${result.kept.workersMs} ms (setup ${result.copied.setupMs} / ${result.kept.setupMs} ms)`,
  );
  return result;
}
