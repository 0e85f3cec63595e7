import { readSources, twinBuilder } from '../../fixtures/twin-steps.js';
import { computeFingerprint } from '../../src/provision/twin-fingerprint.js';
import { cloneTemplate, ensureTemplate } from '../../src/provision/template-store.js';
import {
  admin,
  median,
  pgDumpPsql,
  round,
  RUNS,
  timed,
  withCpu,
  type BenchContext,
} from '../bench-context.js';

/** Cold setup in process, and the pg_dump | psql pipeline it is compared with. */
export interface ColdSetup {
  coldMs: number;
  breakdownMs: { fingerprint: number; build: number; clone: number };
  pgDumpPsqlMs: number;
  /** The median of each run's cold time over the pipeline run just before it. */
  coldVsPgDump: number;
}

/**
 * Cold: fingerprint + build (clone structure, mirror, seed) + publish + clone to the test database, the
 * template built again every run, each run right after a run of `pg_dump --schema-only | psql` +
 * `pg_dump --data-only | psql` of the mirrored tables into a new database, as a user would script it. The
 * ratio is the median of each pair's: the machine's pace drifts by ±20 % over a bench, more than within a pair.
 */
export async function measureColdSetup(ctx: BenchContext): Promise<ColdSetup> {
  const { config, names } = ctx;
  const build = twinBuilder(config);
  const cold: { totalMs: number; fingerprintMs: number; buildMs: number; cloneMs: number }[] = [];
  const pipelineMs: number[] = [];
  for (let i = 0; i < RUNS.cold; i++) {
    pipelineMs.push((await pipelineOnce(ctx)).ms);
    ctx.log(`pg_dump | psql ${i + 1}: ${Math.round(pipelineMs.at(-1)!)} ms`);
    const started = performance.now();
    const [fingerprintMs, fingerprint] = await timed(async () =>
      // Every row hashed, as PGTWIN_REBUILD=1 does.
      computeFingerprint(config, await readSources(config, { fresh: true })),
    );
    const [buildMs, lease] = await timed(() => ensureTemplate(config, fingerprint, build, { rebuild: true }));
    ctx.templates.add(lease.template);
    const [cloneMs] = await timed(() => cloneTemplate(config, lease.template, names.test));
    await lease.release();
    cold.push({ totalMs: performance.now() - started, fingerprintMs, buildMs, cloneMs });
    ctx.log(`cold ${i + 1}: ${Math.round(cold.at(-1)!.totalMs)} ms`);
  }
  return {
    coldMs: round(median(cold.map((c) => c.totalMs))),
    breakdownMs: {
      fingerprint: round(median(cold.map((c) => c.fingerprintMs))),
      build: round(median(cold.map((c) => c.buildMs))),
      clone: round(median(cold.map((c) => c.cloneMs))),
    },
    pgDumpPsqlMs: round(median(pipelineMs)),
    coldVsPgDump: round(median(cold.map((run, i) => run.totalMs / pipelineMs[i]!)), 2),
  };
}

/** The median of `pg_dump --schema-only | psql` + `pg_dump --data-only | psql` into a new database. */
export async function measurePipeline(ctx: BenchContext): Promise<number> {
  const dump: number[] = [];
  for (let i = 0; i < RUNS.cold; i++) {
    dump.push((await pipelineOnce(ctx)).ms);
    ctx.log(`pg_dump | psql ${i + 1}: ${Math.round(dump.at(-1)!)} ms`);
  }
  return round(median(dump));
}

/**
 * One run of the pipeline into a new database; returns its time and the machine's busy CPU time meanwhile
 * (its servers' included). The database is dropped at once: left, autovacuum would analyse its fresh rows
 * within the minute, taking CPU and transaction ids in the middle of the measurement that follows (a warm run
 * then finds the server not quiet since the last one, and counts).
 */
export async function pipelineOnce(ctx: BenchContext): Promise<{ ms: number; cpuMs: number }> {
  await admin(`DROP DATABASE IF EXISTS "${ctx.names.dump}"`);
  const [cpuMs, [ms]] = await withCpu(() => timed(() => pgDumpPsql(ctx.names.production, ctx.names.dump)));
  await admin(`DROP DATABASE "${ctx.names.dump}"`);
  return { ms, cpuMs };
}
