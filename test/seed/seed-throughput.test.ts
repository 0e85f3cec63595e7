import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { loadSeedData } from '../../src/seed/index.js';
import { useContentgenDatabases } from './contentgen-database.js';

const databases = useContentgenDatabases('seedspeed');
const directory = await mkdtemp(path.join(os.tmpdir(), 'pgtwin-seed-'));
afterAll(() => rm(directory, { recursive: true, force: true }));

/** A 10,000-row seed as users write large ones: a few keyed parents, factories with `$count` for the bulk. */
function largeSeed(): unknown {
  return {
    'public.clients': [{ $key: 'acme', name: 'Acme', slug: 'acme' }],
    'public.projects': [
      { $key: 'demo', slug: 'demo', name: 'Demo', client_id: { $ref: 'public.clients.acme' } },
      { $count: 998, client_id: { $ref: 'public.clients.acme' } },
    ],
    'project_alpha.content_entries': [
      {
        $count: 8999,
        project_id: { $ref: 'public.projects.demo' },
        object_model_id: { $ref: 'public.object_models', where: { name: 'Article', version: 2 } },
        body: 'Lorem ipsum dolor sit amet',
        data: { words: 5, tags: ['x'] },
        tags: ['news', 'tech'],
        score: '0.5',
      },
    ],
    'public.llm_usage': [
      {
        $count: 1,
        project_id: { $ref: 'public.projects.demo' },
        provider: 'openai',
        model: 'gpt',
        cost: '1',
        used_at: '2024-01-05T00:00:00Z',
      },
    ],
  };
}

test('loads a 10,000-row seed in one transaction and reports its throughput', async () => {
  const file = path.join(directory, 'large.json');
  await writeFile(file, JSON.stringify(largeSeed()));
  const { client } = await databases.fresh();

  const started = performance.now();
  const result = await loadSeedData(client, file);
  const seconds = (performance.now() - started) / 1000;

  expect(result.rows).toBe(10_000);
  const { rows } = await client.query('SELECT count(*)::int AS n FROM project_alpha.content_entries');
  expect(rows[0].n).toBe(8999);
  // Reported, not asserted: timing depends on the machine.
  console.log(
    `seed throughput: ${result.rows} rows in ${seconds.toFixed(3)} s = ${Math.round(result.rows / seconds)} rows/s`,
  );
});
