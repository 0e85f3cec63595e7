import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { loadFixtureData } from '../fixtures/contentgen/index.js';
import { admin, databaseUrl, MIRRORED, REPO_ROOT, round, sh, SIZE, timed } from './bench-context.js';
import type { FixtureResult } from './results.js';

/** The suite's seed file (1,000 rows), named in the bench's configuration. */
export const SUITE_SEED_FILE = 'seed.json';
/** The 10,000-row seed file of the throughput measurement. */
export const LARGE_SEED_FILE = 'large.json';
export const LARGE_SEED_ROWS = 10_000;

/** Creates the contentgen production at the bench's size in a new database `database`, analysed. */
export async function createProduction(database: string): Promise<FixtureResult> {
  await admin(`CREATE DATABASE "${database}"`);
  const [ms] = await timed(async () => {
    const client = new pg.Client({ connectionString: databaseUrl(database) });
    await client.connect();
    try {
      // Read by path: in the bundle, the fixture's import.meta.url is bench/out's.
      await client.query(
        await readFile(path.join(REPO_ROOT, 'fixtures', 'contentgen', 'schema.sql'), 'utf8'),
      );
      await loadFixtureData(client, SIZE);
    } finally {
      await client.end();
    }
  });
  await sh(`psql ${databaseUrl(database)} -qc 'VACUUM ANALYZE'`);
  const rows = await rowCounts(database);
  const mirroredRows = MIRRORED.reduce((sum, table) => sum + rows[table]!, 0);
  return { size: SIZE, rows, mirroredRows, buildSeconds: round(ms / 1000) };
}

/** Writes the suite's and the throughput measurement's seed files to the project root. */
export async function writeSeedFiles(rootDir: string): Promise<void> {
  await writeFile(path.join(rootDir, SUITE_SEED_FILE), JSON.stringify(seedDocument(100, 899, 'suite')));
  await writeFile(path.join(rootDir, LARGE_SEED_FILE), JSON.stringify(seedDocument(1, 9998, 'large')));
}

async function rowCounts(database: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl(database) });
  await client.connect();
  try {
    const counts: Record<string, number> = {};
    for (const table of [
      ...MIRRORED,
      'public.llm_usage',
      'project_alpha.content_entries',
      'project_beta.content_entries',
    ]) {
      counts[table] = (
        await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)
      ).rows[0]!.n;
    }
    return counts;
  } finally {
    await client.end();
  }
}

/** 1 client, `projects` projects and `entries` content entries: 1 + projects + entries rows. */
function seedDocument(projects: number, entries: number, slug: string): unknown {
  return {
    'public.clients': [{ $key: 'acme', name: 'Acme', slug }],
    'public.projects': [
      { $key: 'demo', slug: `${slug}-demo`, name: 'Demo', client_id: { $ref: 'public.clients.acme' } },
      // Factory-built slugs would collide with the suite seed's already in the database.
      ...(projects > 1 ? [{ $count: projects - 1, client_id: { $ref: 'public.clients.acme' } }] : []),
    ],
    'project_alpha.content_entries': [
      {
        $count: entries,
        project_id: { $ref: 'public.projects.demo' },
        object_model_id: { $ref: 'public.object_models', where: { name: 'model_1', version: 2 } },
        body: 'Lorem ipsum dolor sit amet',
        data: { words: 5, tags: ['x'] },
        tags: ['news', 'tech'],
        score: '0.5',
      },
    ],
  };
}
