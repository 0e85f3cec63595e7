/**
 * Many application transactions at once on the test's one connection: they take turns (a second BEGIN waits
 * for the first transaction to end), so each commits or rolls back exactly its own work.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { enableIsolation, type Isolation } from '../../src/isolation/index.js';
import { adminQuery, useScratch } from '../helpers/databases.js';
import { createDriver, type ClientKind, type Driver } from './client-kinds.js';
import { HANG_DEADLINE_MS, PGTWIN_WAIT_TIMEOUT_MS, SCENARIO_TIMEOUT_MS } from './deadlines.js';
import { observe, withinDeadline } from './observer.js';

const scratch = useScratch('interleaved');
let url: string;
let isolation: Isolation;

beforeAll(async () => {
  url = (await scratch.database()).url;
  await adminQuery('CREATE TABLE items (id int PRIMARY KEY, kind text NOT NULL)', [], url);
  isolation = await enableIsolation({
    connectionString: url,
    waitTimeoutMs: PGTWIN_WAIT_TIMEOUT_MS,
    detectLeaks: false,
  });
});
beforeEach((context) => isolation.begin(context.task.name));
afterEach(() => isolation.rollback());
afterAll(() => isolation.close());

const KINDS: ClientKind[] = ['pg Pool', 'Knex', 'Kysely'];

describe.each(KINDS)('concurrent application transactions through %s', (kind) => {
  let app: Driver;
  beforeAll(() => {
    app = createDriver(kind, url, 10);
  });
  afterAll(() => app.end());

  it(
    'runs 100 at once, committing 90 and rolling back the 10 that throw, each exactly',
    async () => {
      const outcomes = await withinDeadline(
        Promise.allSettled(
          Array.from({ length: 100 }, (_, id) =>
            app.transaction(async (tx) => {
              await tx.query('INSERT INTO items (id, kind) VALUES ($1, $2)', [id, kind]);
              if (id % 10 === 7) throw new Error(`rolls back ${id}`);
            }),
          ),
        ),
        HANG_DEADLINE_MS,
        '100 concurrent transactions',
      );
      expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(90);
      const rejected = outcomes.filter((outcome) => outcome.status === 'rejected');
      expect(rejected.map((outcome) => (outcome.reason as Error).message)).toEqual(
        Array.from({ length: 10 }, (_, i) => `rolls back ${i * 10 + 7}`),
      );
      const { rows } = await app.query('SELECT id FROM items ORDER BY id');
      expect(rows.map((row) => row.id)).toEqual(
        Array.from({ length: 100 }, (_, id) => id).filter((id) => id % 10 !== 7),
      );
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'runs 20 schema migrations at once, each guarded by an advisory lock, as one migration and 19 no-ops',
    async () => {
      const migrate = () =>
        app.transaction(async (tx) => {
          await tx.query('SELECT pg_advisory_lock(4242)');
          await tx.query('CREATE TABLE IF NOT EXISTS migrations (id int PRIMARY KEY)');
          const { rows } = await tx.query('SELECT id FROM migrations WHERE id = 1');
          if (rows.length === 0) {
            // Fails if two migrations ever ran it: the lock (and the turn-taking) must serialise them.
            await tx.query('CREATE TABLE jobs (id int PRIMARY KEY)');
            await tx.query('INSERT INTO migrations VALUES (1)');
          }
          await tx.query('SELECT pg_advisory_unlock(4242)');
          return rows.length === 0;
        });
      const ran = await withinDeadline(
        Promise.all(Array.from({ length: 20 }, migrate)),
        HANG_DEADLINE_MS,
        '20 concurrent migrations',
      );
      expect(ran.filter(Boolean)).toHaveLength(1);
      expect((await app.query('SELECT count(*)::int AS n FROM jobs')).rows).toEqual([{ n: 0 }]);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it('left nothing committed', async () => {
    expect(await observe(url, 'SELECT id FROM items')).toEqual([]);
    expect(await observe(url, "SELECT to_regclass('migrations') AS t")).toEqual([{ t: null }]);
  });
});
