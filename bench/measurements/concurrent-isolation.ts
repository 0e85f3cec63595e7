import pg from 'pg';
import { enableIsolation } from '../../src/isolation/index.js';
import { cloneTemplate } from '../../src/provision/template-store.js';
import { databaseUrl, inChildProcess, round, type BenchContext } from '../bench-context.js';
import type { ConcurrentIsolationResult } from '../results.js';

const TESTS = 200;
const STATEMENTS = 4;
/** Vitest's default `maxConcurrency`: how many concurrent tests run at once. */
const AT_ONCE = 5;

/**
 * What running tests concurrently costs under isolation: the same tests one after another and `AT_ONCE`
 * at a time, each in its own transaction (`runTest`, as the Vitest preset runs them), against plain pg
 * at the same concurrency, which undoes nothing. In a process of its own (`script concurrent-isolation
 * <database>`), since isolation patches `pg`, on a fresh clone of the template.
 */
export async function measureConcurrentIsolation(
  ctx: BenchContext,
  script: string,
): Promise<ConcurrentIsolationResult> {
  await cloneTemplate(ctx.config, ctx.template, ctx.names.test);
  const result = await inChildProcess<ConcurrentIsolationResult>(script, [
    'concurrent-isolation',
    ctx.names.test,
  ]);
  ctx.log(`concurrent isolation: ${JSON.stringify(result)}`);
  return result;
}

/** The child's side. */
export async function measureConcurrentIsolationHere(database: string): Promise<ConcurrentIsolationResult> {
  const url = databaseUrl(database);
  const test = async (pool: pg.Pool, n: number) => {
    for (let i = 0; i < STATEMENTS; i++) {
      if (i % 2 === 0)
        await pool.query('INSERT INTO public.clients (name, slug) VALUES ($1, $2)', [
          `bench ${n}`,
          `bench-${n}-${i}-${Math.floor(Math.random() * 1e12)}`,
        ]);
      else await pool.query('SELECT id, name FROM public.clients WHERE slug = $1', [`bench-${n}`]);
    }
  };
  /** Mean wall time per test, running `TESTS` tests `atOnce` at a time through `run`. */
  const perTest = async (atOnce: number, run: (n: number) => Promise<void>) => {
    for (let n = 0; n < 2 * atOnce; n += atOnce) await batch(n, atOnce, run); // warm-up: opens the connections
    const started = performance.now();
    for (let n = 0; n < TESTS; n += atOnce) await batch(n, atOnce, run);
    return round((performance.now() - started) / TESTS, 3);
  };

  const raw = new pg.Pool({ connectionString: url, max: AT_ONCE });
  const rawConcurrentMs = await perTest(AT_ONCE, (n) => test(raw, n));
  await raw.end();

  const isolation = await enableIsolation({ connectionString: url, detectLeaks: false });
  const pool = new pg.Pool({ connectionString: url, max: AT_ONCE });
  const isolated = (n: number) => isolation.runTest(`test ${n}`, () => test(pool, n));
  const sequentialMs = await perTest(1, isolated);
  const concurrentMs = await perTest(AT_ONCE, isolated);
  await pool.end();
  await isolation.close();
  return {
    tests: TESTS,
    statementsPerTest: STATEMENTS,
    atOnce: AT_ONCE,
    msPerTest: { sequential: sequentialMs, concurrent: concurrentMs, rawConcurrent: rawConcurrentMs },
    concurrentOverheadVsRawMs: round(concurrentMs - rawConcurrentMs, 3),
  };
}

function batch(from: number, size: number, run: (n: number) => Promise<void>): Promise<unknown> {
  return Promise.all(Array.from({ length: size }, (_, i) => run(from + i)));
}
