import path from 'node:path';
import pg from 'pg';
import { connect } from '../../src/connection/connect.js';
import { syncTables } from '../../src/mirror/index.js';
import { cloneTemplate } from '../../src/provision/template-store.js';
import { loadSeedData } from '../../src/seed/index.js';
import { cloneStructure } from '../../src/structure/index.js';
import { selectionFromConfig } from '../../src/structure/schema-selection.js';
import {
  admin,
  autovacuumIdle,
  databaseUrl,
  median,
  run,
  RUNS,
  sh,
  timed,
  type BenchContext,
} from '../bench-context.js';
import { LARGE_SEED_FILE, LARGE_SEED_ROWS } from '../production-fixture.js';
import type { SeedResult } from '../results.js';

/**
 * The 10,000-row seed file: as the pipeline's build loads it (on the connection that has just cloned the
 * structure and mirrored the tables), and on a new connection to a fresh clone of the twin beside psql \copy
 * of the very same rows into another fresh clone (the database's own floor).
 */
export async function measureSeedThroughput(ctx: BenchContext): Promise<SeedResult> {
  const { config, names, rootDir, template } = ctx;
  const runs = { pipeline: [] as number[], fresh: [] as number[], psqlCopy: [] as number[] };
  const seedRows = path.join(rootDir, 'large-entries.tsv');
  for (let i = 0; i < RUNS.seed; i++) {
    await admin(`DROP DATABASE IF EXISTS "${names.dump}"`);
    await admin(`CREATE DATABASE "${names.dump}"`);
    {
      const source = await connect(config.production, 'production');
      const target = new pg.Client({ connectionString: databaseUrl(names.dump) });
      await target.connect();
      try {
        await cloneStructure(source, target, { selection: selectionFromConfig(config) });
        await syncTables(source, target, { policy: config });
        await autovacuumIdle();
        const [ms, result] = await timed(() => loadSeedData(target, LARGE_SEED_FILE, { rootDir }));
        runs.pipeline.push(result.rows / (ms / 1000));
      } finally {
        await Promise.all([source.end(), target.end()]);
      }
    }

    const target = await cloneTemplate(config, template, names.test);
    const client = new pg.Client(target.clientConfig());
    await client.connect();
    await autovacuumIdle();
    const [ms, result] = await timed(() => loadSeedData(client, LARGE_SEED_FILE, { rootDir }));
    runs.fresh.push(result.rows / (ms / 1000));
    await client.end();
    await sh(
      `psql ${databaseUrl(names.test)} -Xqc "\\copy (SELECT project_id, object_model_id, slug, title, body, data, tags, score FROM project_alpha.content_entries WHERE project_id = (SELECT id FROM public.projects WHERE slug = 'large-demo') ORDER BY id) TO '${seedRows}'"`,
    );
    await cloneTemplate(config, template, names.test);
    await autovacuumIdle();
    // psql's own \timing of each statement: no process start or connection, as on pgtwin's side.
    const { stdout } = await run('psql', [
      databaseUrl(names.test),
      '-Xq',
      '-v',
      'ON_ERROR_STOP=1',
      '-c',
      '\\timing on',
      '-c',
      "BEGIN; INSERT INTO public.clients (name, slug) VALUES ('Acme', 'large'); INSERT INTO public.projects (client_id, slug, name) SELECT id, 'large-demo', 'Demo' FROM public.clients WHERE slug = 'large'",
      '-c',
      `\\copy project_alpha.content_entries (project_id, object_model_id, slug, title, body, data, tags, score) FROM '${seedRows}'`,
      '-c',
      'COMMIT',
    ]);
    const copyMs = [...stdout.matchAll(/Time: ([\d.]+) ms/g)].reduce(
      (sum, match) => sum + Number(match[1]),
      0,
    );
    runs.psqlCopy.push(result.rows / (copyMs / 1000));
  }
  const rounded = {
    pipeline: runs.pipeline.map(Math.round),
    fresh: runs.fresh.map(Math.round),
    psqlCopy: runs.psqlCopy.map(Math.round),
  };
  const result: SeedResult = {
    rows: LARGE_SEED_ROWS,
    rowsPerSecond: Math.round(median(runs.pipeline)),
    runs: rounded,
    freshCloneRowsPerSecond: Math.round(median(runs.fresh)),
    psqlCopyRowsPerSecond: Math.round(median(runs.psqlCopy)),
  };
  ctx.log(
    `seed: pipeline ${result.rowsPerSecond} rows/s, fresh clone ${result.freshCloneRowsPerSecond} rows/s, psql \\copy ${result.psqlCopyRowsPerSecond} rows/s`,
  );
  return result;
}
