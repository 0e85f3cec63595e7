import { readSources, twinBuilder } from '../../fixtures/twin-steps.js';
import { computeFingerprint } from '../../src/provision/twin-fingerprint.js';
import { cloneTemplate, ensureTemplate } from '../../src/provision/template-store.js';
import { median, round, RUNS, timed, type BenchContext } from '../bench-context.js';

/** Warm setup in process: nothing changed since the cold runs. */
export interface WarmSetup {
  warmMs: number;
  breakdownMs: { fingerprint: number; lease: number; clone: number };
  /** The template reused, which the clone and seed measurements copy. */
  template: string;
}

/** The template the warm runs reuse, built when no cold run built it (`only warm`, `only endpoint`). */
export async function ensureBenchTemplate(ctx: BenchContext): Promise<void> {
  const fingerprint = await computeFingerprint(ctx.config, await readSources(ctx.config));
  const lease = await ensureTemplate(ctx.config, fingerprint, twinBuilder(ctx.config));
  ctx.templates.add(lease.template);
  await lease.release();
}

/** Fingerprint, lease of the existing template (it must not be rebuilt), clone to the test database. */
export async function measureWarmSetup(ctx: BenchContext): Promise<WarmSetup> {
  const { config, names } = ctx;
  const build = twinBuilder(config);
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
  const warmMs = round(median(warm.map((w) => w.totalMs)));
  ctx.log(`warm: ${Math.round(warmMs)} ms`);
  return {
    warmMs,
    breakdownMs: {
      fingerprint: round(median(warm.map((w) => w.fingerprintMs))),
      lease: round(median(warm.map((w) => w.leaseMs))),
      clone: round(median(warm.map((w) => w.cloneMs))),
    },
    template,
  };
}
