import { rm } from 'node:fs/promises';
import { admin, databaseUrl, median, round, RUNS, withCpu, type BenchContext } from '../bench-context.js';
import { cliProject, pgtwinSetup, phaseTimes, runPgtwin, type CliProject } from '../pgtwin-command.js';
import { pipelineOnce } from './cold-setup.js';
import type { CliSetupResult, Timing } from '../results.js';

const LEAKED_SLUG = 'pgtwin-bench-leaked';

/**
 * The `pgtwin` command as a user runs it, wall time with Node's start-up: `--version` alone, then
 * `pgtwin setup` cold (PGTWIN_REBUILD=1), warm with nothing changed, and warm after a run that leaked (a row
 * committed to the test database outside any test, which the next setup must not keep). Each scenario is
 * one entry of `scenarios` below, so adding or adjusting one touches one place.
 *
 * Every ratio is taken against the pipeline, run once before each cold run.
 */
export async function measureCliSetup(ctx: BenchContext): Promise<CliSetupResult> {
  const project = await cliProject(ctx, ctx.names.cliTest);
  try {
    const version = await runPgtwin(project, ['--version']);
    if (version.code !== 0) throw new Error(`pgtwin --version exited with ${version.code}`);
    const startup = await times(RUNS.cli, async () => (await runPgtwin(project, ['--version'])).wallMs);
    ctx.log(`pgtwin --version: ${Math.round(startup.medianMs)} ms`);

    // Each cold run right after a run of the pipeline; the ratio is the median of each pair's, as the
    // machine's pace drifts by ±20 % over a bench, more than within a pair.
    const pipelineMs: number[] = [];
    const pipelineCpuMs: number[] = [];
    const coldCpuMs: number[] = [];
    const cold = await times(RUNS.cli, async () => {
      const pipeline = await pipelineOnce(ctx);
      pipelineMs.push(pipeline.ms);
      pipelineCpuMs.push(pipeline.cpuMs);
      const [cpuMs, ms] = await withCpu(() => setup(ctx, project, { PGTWIN_REBUILD: '1' }));
      coldCpuMs.push(cpuMs);
      return ms;
    });
    const coldVsPgDump = round(median(cold.runsMs.map((ms, i) => ms / pipelineMs[i]!)), 2);
    const pgDumpPsqlMs = round(median(pipelineMs));
    ctx.log(
      `pgtwin setup cold: ${Math.round(cold.medianMs)} ms, ${coldVsPgDump}× the pipeline run before each`,
    );

    let warmPhasesMs: Record<string, number> = {};
    const warm = await times(RUNS.cli, () =>
      setup(ctx, project, {}, (phases) => {
        warmPhasesMs = phases;
      }),
    );
    ctx.log(`pgtwin setup warm: ${Math.round(warm.medianMs)} ms`);

    let leakCleared = true;
    const warmAfterLeak = await times(RUNS.cli, async () => {
      await leakARow(ctx.names.cliTest);
      const ms = await setup(ctx, project);
      leakCleared &&= (await leakedRows(ctx.names.cliTest)) === 0;
      return ms;
    });
    ctx.log(
      `pgtwin setup after a leak: ${Math.round(warmAfterLeak.medianMs)} ms, leak cleared: ${leakCleared}`,
    );

    return {
      startup,
      cold,
      warm,
      warmAfterLeak,
      leakCleared,
      warmPhasesMs,
      pgDumpPsqlMs,
      coldVsPgDump,
      cpu: {
        pipelineMs: round(median(pipelineCpuMs)),
        coldMs: round(median(coldCpuMs)),
        coldVsPipeline: round(median(coldCpuMs.map((ms, i) => ms / pipelineCpuMs[i]!)), 2),
      },
      warmVsPgDump: round(warm.medianMs / pgDumpPsqlMs, 3),
      warmVsCold: round(warm.medianMs / cold.medianMs, 3),
      warmAfterLeakVsPgDump: round(warmAfterLeak.medianMs / pgDumpPsqlMs, 3),
      startupVsWarm: round(startup.medianMs / warm.medianMs, 2),
    };
  } finally {
    await rm(project.rootDir, { recursive: true, force: true });
  }
}

/** One `pgtwin setup`; remembers the template it used (dropped at the end) and hands over its phases. */
async function setup(
  ctx: BenchContext,
  project: CliProject,
  env: Record<string, string> = {},
  phases?: (times: Record<string, number>) => void,
): Promise<number> {
  const { wallMs, document } = await pgtwinSetup(project, env);
  if (document.template) ctx.templates.add(document.template);
  phases?.(phaseTimes(document));
  return wallMs;
}

async function times(count: number, fn: () => Promise<number>): Promise<Timing> {
  const runsMs: number[] = [];
  for (let i = 0; i < count; i++) runsMs.push(round(await fn()));
  return { medianMs: round(median(runsMs)), runsMs };
}

/** What a `beforeAll` outside isolation does: a row committed to the test database. */
async function leakARow(database: string): Promise<void> {
  await admin(
    databaseUrl(database),
    `INSERT INTO public.clients (name, slug) VALUES ('Leaked', '${LEAKED_SLUG}')`,
  );
}

async function leakedRows(database: string): Promise<number> {
  const [row] = await admin<{ n: number }>(
    databaseUrl(database),
    `SELECT count(*)::int AS n FROM public.clients WHERE slug = '${LEAKED_SLUG}'`,
  );
  return row?.n ?? -1;
}
