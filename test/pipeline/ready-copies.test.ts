import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { gc, type ResolvedConfig } from 'pgtwin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentRun } from '../../src/guard/test-marker.js';
import { dropRunCopies, ReadyCopies } from '../../src/pipeline/ready-copies.js';
import { TwinDatabases } from '../../src/provision/twin-databases.js';
import { testConfig } from '../helpers/config.js';
import { adminQuery, databaseUrl, uniqueName, useScratch } from '../helpers/databases.js';
import { DROP_HOOK_TIMEOUT_MS } from '../helpers/timeouts.js';

const scratch = useScratch('ready');
let config: ResolvedConfig;
let template: string;

beforeAll(async () => {
  const tpl = await scratch.database('tpl');
  await adminQuery('CREATE TABLE jobs (id int PRIMARY KEY)', [], tpl.url);
  template = tpl.name;
  // Short enough that the pools' names keep it whole.
  config = await testConfig({ test: { database: uniqueName('rc') } });
});

// Whatever a failed test left.
afterAll(async () => {
  for (const name of Object.keys(await databasesLike(`${config.test.database}_`)))
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}, DROP_HOOK_TIMEOUT_MS);

/** The OIDs of the databases whose name starts with `prefix`, by name. */
async function databasesLike(prefix: string): Promise<Record<string, number>> {
  const { rows } = await adminQuery<{ name: string; oid: number }>(
    'SELECT datname AS name, oid::int AS oid FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1',
    [prefix],
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.oid]));
}

async function oidOf(database: string): Promise<number | undefined> {
  const { rows } = await adminQuery<{ oid: number }>(
    'SELECT oid::int AS oid FROM pg_database WHERE datname = $1',
    [database],
  );
  return rows[0]?.oid;
}

/** A run id of this host whose process has exited, as a killed run leaves in its markers. */
function deadRun(): string {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return `${hostname()}:${child.stdout.toString()}`;
}

describe('ReadyCopies', () => {
  it('creates nothing until the first take, then takes the refilled copy with a rename: the same database, not a new one', async () => {
    const database = `${config.test.database}_a`;
    const copies = new ReadyCopies({ config, template, run: currentRun(), database });
    expect(await databasesLike(database)).toEqual({});

    const first = await copies.take();
    expect(first.ready).toBe(false);
    expect(first.target.database).toMatch(new RegExp(`^${database}_copy_${process.pid}_`));
    await copies.settle();
    const pool = Object.entries(await databasesLike(`${database}_ready_`));
    expect(pool).toHaveLength(1);
    const [readyName, readyOid] = pool[0]!;

    const second = await copies.take();
    expect(second.ready).toBe(true);
    expect(await oidOf(second.target.database)).toBe(readyOid);
    expect(await oidOf(readyName)).toBeUndefined();
    // A copy of the template, reachable by the test user.
    const rows = await adminQuery('SELECT count(*) FROM jobs', [], databaseUrl(second.target.database));
    expect(rows.rowCount).toBe(1);

    await copies.release(first.target.database);
    await copies.release(second.target.database);
    await copies.settle();
    expect(Object.keys(await databasesLike(database))).toEqual([
      expect.stringMatching(new RegExp(`^${database}_ready_`)),
    ]);

    const dropped = await TwinDatabases.use(config, (databases) => dropRunCopies(databases, currentRun()));
    expect(dropped).toHaveLength(1);
    expect(await databasesLike(database)).toEqual({});
  });

  it('with readyCopies 0 creates each copy when it is taken and keeps none ready', async () => {
    const database = `${config.test.database}_b`;
    const copies = new ReadyCopies({ config, template, run: currentRun(), database, size: 0 });
    const taken = await copies.take();
    expect(taken.ready).toBe(false);
    await copies.settle();
    expect(Object.keys(await databasesLike(database))).toEqual([taken.target.database]);
    await copies.release(taken.target.database);
    await copies.settle();
    expect(await databasesLike(database)).toEqual({});
  });

  it("leaves a killed run's ready and taken copies to gc, which drops them", async () => {
    const database = `${config.test.database}_c`;
    const copies = new ReadyCopies({ config, template, run: deadRun(), database, size: 2 });
    await copies.take();
    await copies.settle();
    const left = Object.keys(await databasesLike(database));
    expect(left).toHaveLength(3);

    const result = await gc(config, { olderThanMs: 0, names: new RegExp(`^${database}_`) });
    expect(result.dropped.map((entry) => entry.name).sort()).toEqual(left);
    expect(result.dropped.every((entry) => entry.kind === 'scratch')).toBe(true);
    expect(await databasesLike(database)).toEqual({});
  });
});
