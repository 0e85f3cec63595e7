import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { expect, test } from 'vitest';
import { enableIsolation } from '../../src/isolation/index.js';
import { loadSeedData } from '../../src/seed/index.js';
import { databaseUrl } from '../helpers/databases.js';
import { useContentgenDatabases } from './contentgen-database.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const databases = useContentgenDatabases('seediso');

async function count(client: pg.ClientBase): Promise<number> {
  return (await client.query('SELECT count(*)::int AS n FROM public.projects')).rows[0].n;
}

test("a seed loaded inside an isolated test goes with the test's rollback, triggers back on", async () => {
  const { name } = await databases.fresh();
  const url = databaseUrl(name);
  const isolation = await enableIsolation({ connectionString: url, detectLeaks: false });
  const client = new pg.Client({ connectionString: url });
  try {
    await isolation.begin();
    await client.connect();

    const result = await loadSeedData(client, path.join(ROOT, 'test/seed/data/clients.json'));

    expect(result.rows).toBe(3);
    expect(await count(client)).toBe(2);
    expect((await client.query('SHOW session_replication_role')).rows[0]).toEqual({
      session_replication_role: 'origin',
    });
    await client.end();
  } finally {
    await isolation.rollback();
    await isolation.close();
  }

  const outside = new pg.Client({ connectionString: url });
  await outside.connect();
  try {
    expect(await count(outside)).toBe(0);
  } finally {
    await outside.end();
  }
});
