import { hostname } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedConfig } from '../../src/config/index.js';
import { connect } from '../../src/connection/connect.js';
import { ProvisionError } from '../../src/errors.js';
import { writeMarker, type TestMarker } from '../../src/guard/test-marker.js';
import { computeFingerprint } from '../../src/provision/twin-fingerprint.js';
import { gc } from '../../src/provision/gc.js';
import { lock, runLock, unlock } from '../../src/provision/template-locks.js';
import { ensureTemplate, type TemplateLease } from '../../src/provision/template-store.js';
import {
  currentWorkerId,
  prepareWorkerDatabases,
  workerDatabase,
} from '../../src/provision/worker-database.js';
import { adminQuery, uniqueName } from '../helpers/databases.js';
import {
  databaseState,
  dropAfterAll,
  queryDatabase,
  readSources,
  speedProject,
  twinBuilder,
} from './speed-fixture.js';

const created = new Set<string>();
dropAfterAll(() => created);

let config: ResolvedConfig;
let lease: TemplateLease;

beforeAll(async () => {
  const project = await speedProject('wk');
  config = project.config;
  created.add(project.production);
  lease = await ensureTemplate(
    config,
    await computeFingerprint(config, await readSources(config)),
    twinBuilder(config),
  );
  created.add(lease.template);
  return () => lease.release();
});

async function stamp(database: string, marker: TestMarker): Promise<void> {
  const admin = await connect(config.admin, 'admin');
  try {
    await writeMarker(admin, database, marker);
  } finally {
    await admin.end();
  }
}

/** A pid no process has: above the kernel's pid limit. */
const DEAD_PID = 4_194_305;

describe('worker databases', () => {
  it('reads the worker id from VITEST_POOL_ID or JEST_WORKER_ID and refuses anything else', () => {
    expect(currentWorkerId({ VITEST_POOL_ID: '3' })).toBe(3);
    expect(currentWorkerId({ JEST_WORKER_ID: '2' })).toBe(2);
    expect(currentWorkerId({})).toBe(1);
    expect(() => currentWorkerId({ VITEST_POOL_ID: 'x' })).toThrow(
      /VITEST_POOL_ID must be a positive whole number/,
    );
  });

  it('gives each worker its own clone: a write in one is invisible in another', async () => {
    const workers = await prepareWorkerDatabases(config, lease.template, 3);
    for (const worker of workers) created.add(worker.target.database);
    expect(workers.map((worker) => worker.env.TEST_DB_NAME)).toEqual(
      [1, 2, 3].map((id) => `${config.test.database}_w${id}`),
    );
    expect(workers[0]!.env.TEST_DATABASE_URL).toContain(`/${config.test.database}_w1`);
    const [one, two] = workers.map((worker) => worker.target.database);
    await queryDatabase(one!, `INSERT INTO public.clients (name, slug) VALUES ('only in w1', 'w1')`);
    const count = async (database: string) =>
      (
        await queryDatabase<{ n: number }>(
          database,
          `SELECT count(*)::int AS n FROM public.clients WHERE slug = 'w1'`,
        )
      )[0]!.n;
    expect([await count(one!), await count(two!)]).toEqual([1, 0]);
    const { rows } = await adminQuery<{ comment: string }>(
      `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`,
      [two],
    );
    expect(JSON.parse(rows[0]!.comment.slice('pgtwin:'.length))).toMatchObject({ kind: 'worker' });

    // A later run recreates it fresh.
    const again = await workerDatabase(config, lease.template, 1);
    expect(await count(again.target.database)).toBe(0);
  });

  it('refuses to recreate a worker database another live run is using', async () => {
    const name = `${config.test.database}_w9`;
    created.add(name);
    await workerDatabase(config, lease.template, 9);
    // A run on another host, alive: a session of it holds its run lock. Named after this process, so a
    // second suite on the server never holds (or releases) the same run's lock.
    const other = `otherhost:${process.pid}`;
    const holder = await connect(config.admin, 'admin');
    await lock(holder, runLock(other), 'shared');
    await stamp(name, { kind: 'worker', run: other, created: new Date().toISOString() });
    await expect(workerDatabase(config, lease.template, 9)).rejects.toThrow(ProvisionError);
    // Released before disconnecting: a closed connection's backend drops its locks only when it has exited,
    // which under load can come after the next statement here.
    await unlock(holder, runLock(other), 'shared');
    await holder.end();
    await workerDatabase(config, lease.template, 9);
  });
});

describe('gc', () => {
  it('drops stale stamped databases of dead runs, keeps recent and live ones, never touches unstamped ones', async () => {
    const names = {
      stale: uniqueName('gc_stale'),
      recent: uniqueName('gc_recent'),
      alive: uniqueName('gc_alive'),
      unstamped: uniqueName('gc_unstamped'),
    };
    for (const name of Object.values(names)) {
      created.add(name);
      await adminQuery(`CREATE DATABASE "${name}"`);
    }
    const longAgo = '2000-01-01T00:00:00.000Z';
    await stamp(names.stale, { kind: 'worker', run: `${hostname()}:${DEAD_PID}`, created: longAgo });
    await stamp(names.recent, {
      kind: 'test',
      run: `${hostname()}:${DEAD_PID}`,
      created: new Date().toISOString(),
    });
    await stamp(names.alive, { kind: 'scratch', run: `${hostname()}:${process.pid}`, created: longAgo });
    const only = new RegExp(`^(${Object.values(names).join('|')})$`);

    const preview = await gc(config, { olderThanMs: 60_000, dryRun: true, names: only });
    expect(preview.wouldDrop.map((entry) => entry.name)).toEqual([names.stale]);
    expect(preview.dropped).toEqual([]);
    expect(await databaseState(names.stale)).toBe('database');

    const result = await gc(config, { olderThanMs: 60_000, names: only });
    expect(result.dropped.map((entry) => entry.name)).toEqual([names.stale]);
    expect(Object.fromEntries(result.kept.map((entry) => [entry.name, entry.kept]))).toEqual({
      [names.recent]: 'recent',
      [names.alive]: 'run alive',
    });
    expect(await databaseState(names.stale)).toBe('missing');
    expect(await databaseState(names.unstamped)).toBe('database');
  });
});
