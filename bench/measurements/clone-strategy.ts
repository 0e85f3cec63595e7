import type { CloneStrategy } from '../../src/provision/database-lifecycle.js';
import { cloneTemplate } from '../../src/provision/template-store.js';
import { prepareWorkerDatabases } from '../../src/provision/worker-database.js';
import { admin, median, repeat, round, RUNS, timed, type BenchContext } from '../bench-context.js';
import type { CloneResult } from '../results.js';

const WORKERS = 4;

/** One clone of the template, and four worker copies in parallel, with each `CREATE DATABASE` strategy. */
export async function measureCloneStrategies(ctx: BenchContext): Promise<CloneResult> {
  const { config, names, template } = ctx;
  const measure = async (strategy: CloneStrategy) => {
    const singleMs = median(
      await repeat(
        RUNS.clone,
        async () => (await timed(() => cloneTemplate(config, template, names.test, { strategy })))[0],
      ),
    );
    const fourWorkersMs = median(
      await repeat(RUNS.clone, async () => {
        const [ms, workers] = await timed(() =>
          prepareWorkerDatabases(config, template, WORKERS, { strategy }),
        );
        for (const worker of workers) ctx.extra.add(worker.target.database);
        return ms;
      }),
    );
    const timing = {
      singleMs: round(singleMs),
      fourWorkersMs: round(fourWorkersMs),
      perWorkerMs: round(fourWorkersMs / WORKERS),
    };
    ctx.log(`clone ${strategy}: ${JSON.stringify(timing)}`);
    return timing;
  };
  const FILE_COPY = await measure('FILE_COPY');
  const WAL_LOG = await measure('WAL_LOG');
  const [row] = await admin<{ size: string }>('SELECT pg_database_size($1) AS size', [template]);
  return { templateMb: round(Number(row!.size) / 2 ** 20), strategies: { FILE_COPY, WAL_LOG } };
}
