import pg from 'pg';
import { gc, type ResolvedConfig } from 'pgtwin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/connection/connect.js';
import { newMarker, writeMarker, WIP_PREFIX } from '../../src/guard/test-marker.js';
import { cleanLeftovers, findLeftovers } from '../../src/provision/database-lifecycle.js';
import { lock, runLock, wipLock } from '../../src/provision/template-locks.js';
import { prepareWorkerDatabases } from '../../src/provision/worker-database.js';
import { testConfig } from '../helpers/config.js';
import { adminQuery, SERVER_URL, useScratch } from '../helpers/databases.js';

// Whether a run is alive is read from pg_locks, never probed with a try-lock: parallel probes of one dead
// run used to see each other's probe as the run's own lock.

const scratch = useScratch('live');
let config: ResolvedConfig;
let template: string;
const held: pg.Client[] = [];

beforeAll(async () => {
  const prod = await scratch.database('prod');
  template = (await scratch.database('tpl')).name;
  const test = scratch.databaseName('test');
  for (let id = 1; id <= 3; id++) scratch.databaseName(`unused${id}`);
  config = await testConfig({ production: { database: prod.name }, test: { database: test } });
});

afterAll(async () => {
  for (const client of held) await client.end().catch(() => undefined);
  for (let id = 1; id <= 3; id++)
    await adminQuery(`DROP DATABASE IF EXISTS "${config.test.database}_w${id}" WITH (FORCE)`);
});

/** A session on the admin database that holds `name` until the file ends, as a live run's would. */
async function holdLock(name: Parameters<typeof lock>[1], mode: 'shared' | 'exclusive'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  held.push(client);
  await lock(client, name, mode);
  return client;
}

async function stampAs(database: string, kind: 'worker' | 'scratch', run: string): Promise<void> {
  const admin = await connect(config.admin, 'admin');
  try {
    await writeMarker(admin, database, { ...newMarker(kind, run), created: '2000-01-01T00:00:00Z' });
  } finally {
    await admin.end();
  }
}

describe('liveness and leftovers', () => {
  it("recreates a dead run's worker copies in parallel, twice in a row, without a false 'still in use'", async () => {
    for (let id = 1; id <= 3; id++) {
      await adminQuery(`CREATE DATABASE "${config.test.database}_w${id}"`);
      await stampAs(`${config.test.database}_w${id}`, 'worker', 'deadhost:4242');
    }
    for (let round = 0; round < 2; round++) {
      const workers = await prepareWorkerDatabases(config, template, 3);
      expect(workers.map((worker) => worker.target.database)).toEqual(
        [1, 2, 3].map((id) => `${config.test.database}_w${id}`),
      );
      for (const worker of workers)
        await stampAs(worker.target.database, 'worker', `deadhost:${4242 + round}`);
    }
  });

  it('refuses to recreate a worker copy whose run holds its run lock, on any host', async () => {
    // Named after this process, so a second suite on the server never holds the same run's lock.
    const other = `otherhost:${process.pid}`;
    await stampAs(`${config.test.database}_w1`, 'worker', other);
    await holdLock(runLock(other), 'shared');
    await expect(prepareWorkerDatabases(config, template, 1)).rejects.toThrow(
      `the pgtwin run ${other} is still using it`,
    );
  });

  it('keeps, in gc from anywhere, a scratch copy whose run is alive on another host; drops it once the run is gone', async () => {
    const copy = await scratch.database('copy');
    const far = `farhost:${process.pid}`;
    await stampAs(copy.name, 'scratch', far);
    const run = await holdLock(runLock(far), 'shared');
    const only = new RegExp(`^${copy.name}$`);
    expect((await gc(config, { olderThanMs: 0, names: only })).kept).toMatchObject([
      { name: copy.name, kept: 'run alive' },
    ]);
    await run.end();
    expect((await gc(config, { olderThanMs: 0, names: only })).dropped).toMatchObject([{ name: copy.name }]);
  });

  it('drops a work-in-progress database whose creator died, even unmarked, and keeps one being created', async () => {
    const dead = `${WIP_PREFIX}${'d'.repeat(10)}${process.pid}`.slice(0, 63);
    const alive = `${WIP_PREFIX}${'a'.repeat(10)}${process.pid}`.slice(0, 63);
    // Locked before it exists, as createDatabase does: another file's cleanup may run at any moment.
    await holdLock(wipLock(alive), 'exclusive');
    for (const name of [dead, alive]) await adminQuery(`CREATE DATABASE "${name}"`);
    const admin = await connect(config.admin, 'admin');
    try {
      // Other files' runs clean leftovers too, so the dead one may already be gone by now.
      expect(await findLeftovers(admin)).not.toContain(alive);
      // Another file's cleanup may be dropping the dead one right now (it then holds its lock): wait for it.
      for (let tries = 0; tries < 50; tries++) {
        await cleanLeftovers(config, admin);
        const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [dead]);
        if (left.rowCount === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const { rows } = await admin.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [
        [dead, alive],
      ]);
      expect(rows.map((row) => row.datname)).toEqual([alive]);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${alive}" WITH (FORCE)`);
      await admin.end();
    }
  });
});
