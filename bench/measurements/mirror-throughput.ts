import path from 'node:path';
import pg from 'pg';
import { connect } from '../../src/connection/connect.js';
import { syncTables } from '../../src/mirror/index.js';
import { cloneStructure } from '../../src/structure/index.js';
import { selectionFromConfig } from '../../src/structure/schema-selection.js';
import {
  admin,
  BENCH_DIR,
  databaseUrl,
  median,
  pgDumpPsqlData,
  run,
  RUNS,
  timed,
  type BenchContext,
} from '../bench-context.js';
import type { MirrorMeasurement } from '../mirror-memory.js';
import type { MirrorResult } from '../results.js';

/**
 * Mirroring the fixture's mirrored tables into an empty copy of the structure, against
 * `pg_dump --data-only | psql` of the same tables; then 1,000,000 rows in a process of its own for memory.
 */
export async function measureMirrorThroughput(ctx: BenchContext): Promise<MirrorResult> {
  const { config, names, mirroredRows } = ctx;
  await admin(`CREATE DATABASE "${names.structure}"`);
  {
    const source = await connect(config.production, 'production');
    const target = new pg.Client({ connectionString: databaseUrl(names.structure) });
    await target.connect();
    await cloneStructure(source, target, { selection: selectionFromConfig(config) });
    await Promise.all([source.end(), target.end()]);
  }
  const emptyCopy = async () => {
    await admin(`DROP DATABASE IF EXISTS "${names.dump}"`);
    await admin(`CREATE DATABASE "${names.dump}" TEMPLATE "${names.structure}"`);
  };
  const mirrorRates: number[] = [];
  const dumpRates: number[] = [];
  for (let i = 0; i < RUNS.mirror; i++) {
    await emptyCopy();
    const source = await connect(config.production, 'production');
    const target = new pg.Client({ connectionString: databaseUrl(names.dump) });
    await target.connect();
    const [ms] = await timed(() => syncTables(source, target, { policy: config }));
    await Promise.all([source.end(), target.end()]);
    mirrorRates.push(mirroredRows / (ms / 1000));
    await emptyCopy();
    const [dumpMs] = await timed(() => pgDumpPsqlData(names.production, names.dump));
    dumpRates.push(mirroredRows / (dumpMs / 1000));
  }
  const rowsPerSecond = Math.round(median(mirrorRates));
  const pgDumpPsqlRowsPerSecond = Math.round(median(dumpRates));
  ctx.log(`mirror: ${rowsPerSecond} rows/s, pg_dump|psql ${pgDumpPsqlRowsPerSecond} rows/s`);
  ctx.log('mirror memory: 1,000,000 rows');
  return { rows: mirroredRows, rowsPerSecond, pgDumpPsqlRowsPerSecond, memory: await mirrorMemory() };
}

async function mirrorMemory(): Promise<MirrorMeasurement | { error: string }> {
  const script = path.join(BENCH_DIR, 'out', 'mirror-memory.mjs');
  const last = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!) as MirrorMeasurement;
  try {
    const { stdout } = await run(process.execPath, ['--expose-gc', script, '1000000'], {
      maxBuffer: 2 ** 20,
    });
    return last(stdout);
  } catch (error) {
    const failed = error as { stdout?: string; message: string };
    // Exit code 1 means the peak passed 150 MB; the measurement is still printed.
    if (failed.stdout?.trim()) return last(failed.stdout);
    return { error: failed.message };
  }
}
