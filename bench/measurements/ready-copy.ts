import { currentRun } from '../../src/guard/test-marker.js';
import { ReadyCopies } from '../../src/pipeline/ready-copies.js';
import { admin, median, round, timed, type BenchContext } from '../bench-context.js';
import type { ReadyCopyResult } from '../results.js';

const RUNS = 5;

/**
 * What an opted-out test waits for before it runs: taking a copy from a worker's pool of ready copies (a
 * rename) against creating one when asked (`isolation.readyCopies: 0`), and dropping it afterwards (in the
 * background during the next tests).
 */
export async function measureReadyCopy(ctx: BenchContext): Promise<ReadyCopyResult> {
  const { config, template, names } = ctx;
  const pool = (size: number) =>
    new ReadyCopies({ config, template, run: currentRun(), database: names.test, size });
  const create = pool(0);
  const ready = pool(1);
  const createMs: number[] = [];
  const takeMs: number[] = [];
  const dropMs: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const [ms, copy] = await timed(() => create.take());
      createMs.push(ms);
      dropMs.push((await timed(() => create.release(copy.target.database)))[0]);
    }
    // The first take fills the pool.
    await ready.release((await ready.take()).target.database);
    for (let i = 0; i < RUNS; i++) {
      await ready.settle();
      const [ms, copy] = await timed(() => ready.take());
      if (!copy.ready) throw new Error('the pool had no ready copy after settling');
      takeMs.push(ms);
      await ready.release(copy.target.database);
    }
  } finally {
    await ready.settle();
    await create.settle();
    // The copy the pool made ready last, dropped with the bench's other databases.
    const rows = await admin<{ name: string }>(
      'SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1)',
      [`${names.test.slice(0, 30)}_ready_`],
    );
    for (const { name } of rows) ctx.extra.add(name);
  }
  const result = {
    runs: RUNS,
    takeReadyMs: round(median(takeMs)),
    createMs: round(median(createMs)),
    dropMs: round(median(dropMs)),
  };
  ctx.log(`ready copy: ${JSON.stringify(result)}`);
  return result;
}
