import { readSources, twinBuilder } from '../../fixtures/twin-steps.js';
import { computeFingerprint } from '../../src/provision/twin-fingerprint.js';
import { cloneTemplate, ensureTemplate } from '../../src/provision/template-store.js';
import { admin, median, pgDumpPsql, round, RUNS, timed, type BenchContext } from '../bench-context.js';

/** Cold setup in process, and the pg_dump | psql pipeline it is compared with. */
export interface ColdSetup {
  coldMs: number;
  breakdownMs: { fingerprint: number; build: number; clone: number };
  pgDumpPsqlMs: number;
}

/**
 * Cold: fingerprint + build (clone structure, mirror, seed) + publish + clone to the test database, the
 * template built again every run; then `pg_dump --schema-only | psql` + `pg_dump --data-only | psql` of the
 * mirrored tables into a new database, as a user would script it.
 */
export async function measureColdSetup(ctx: BenchContext): Promise<ColdSetup> {
  const { config, names } = ctx;
  const build = twinBuilder(config);
  const cold: { totalMs: number; fingerprintMs: number; buildMs: number; cloneMs: number }[] = [];
  for (let i = 0; i < RUNS.cold; i++) {
    const started = performance.now();
    const [fingerprintMs, fingerprint] = await timed(async () =>
      computeFingerprint(config, await readSources(config)),
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
    pgDumpPsqlMs: await measurePipeline(ctx),
  };
}

/** The median of `pg_dump --schema-only | psql` + `pg_dump --data-only | psql` into a new database. */
export async function measurePipeline(ctx: BenchContext): Promise<number> {
  const { names } = ctx;
  const dump: number[] = [];
  for (let i = 0; i < RUNS.cold; i++) {
    await admin(`DROP DATABASE IF EXISTS "${names.dump}"`);
    const [ms] = await timed(() => pgDumpPsql(names.production, names.dump));
    dump.push(ms);
    ctx.log(`pg_dump | psql ${i + 1}: ${Math.round(ms)} ms`);
  }
  return round(median(dump));
}
