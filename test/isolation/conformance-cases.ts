/**
 * The per-test isolation conformance cases: each proves the application behaves inside a test as it would
 * without the wrapper, through each way an application reaches PostgreSQL. One home for both runners:
 * conformance.test.ts runs them under Vitest (against pgtwin's engine, or pg-transactional-tests, see
 * BASELINE.md), test/presets/jest-conformance under Jest with `preset: 'pgtwin'`. So they use only what both
 * runners provide, passed in as a {@link ConformanceRunner}.
 */
import type { afterAll, beforeAll, expect } from 'vitest';
import { CLIENT_KINDS, createDriver, type ClientKind, type Driver } from './client-kinds.js';
import { HANG_DEADLINE_MS } from './deadlines.js';
import { observe, withinDeadline } from './observer.js';

/** The structure the cases need in the test database. */
export const CONFORMANCE_SCHEMA = `
  CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
  CREATE FUNCTION add_item(item text) RETURNS int LANGUAGE sql AS $$ INSERT INTO items (name) VALUES (item) RETURNING id $$;
  CREATE SCHEMA other_schema;
  CREATE TABLE parents (id int PRIMARY KEY);
  CREATE TABLE children (id int PRIMARY KEY, parent_id int REFERENCES parents DEFERRABLE INITIALLY DEFERRED);`;

type Body = () => Promise<unknown>;

/** The test API the cases use, with the same shape in Vitest and Jest (`@jest/globals`). */
export interface ConformanceRunner {
  describe(name: string, body: () => void): void;
  it(name: string, body: Body, timeout?: number): void;
  /** A test that passes only when its body fails: Vitest's `it.fails`, Jest's `it.failing`. */
  failing(name: string, body: Body, timeout?: number): void;
  beforeAll: typeof beforeAll;
  afterAll: typeof afterAll;
  expect: typeof expect;
}

/** The isolation under test, as the cases reach it. */
export interface ConformanceTarget {
  /** Named in every describe. */
  name: string;
  /** The test database on the server: in-process `pg` clients connect to it, committed rows are read there. */
  databaseUrl(): string;
  /** Where the other clients connect: pgtwin's wire endpoint (the database itself for an engine without one). */
  clientUrl(): string;
}

/** Kinds whose pool is node-postgres's pg-pool, which pgtwin guards against a test waiting on itself. */
const POOL_GUARDED = new Set<ClientKind>(['pg Pool', 'Kysely', 'Drizzle (node-postgres)']);

/**
 * Defines the cases, one describe per client kind. The caller creates {@link CONFORMANCE_SCHEMA} and runs each
 * test in the isolation under test.
 */
export function defineConformanceCases(runner: ConformanceRunner, target: ConformanceTarget): void {
  for (const kind of CLIENT_KINDS)
    runner.describe(`${target.name} isolation through ${kind}`, () => defineKindCases(kind, runner, target));
}

function defineKindCases(kind: ClientKind, runner: ConformanceRunner, target: ConformanceTarget): void {
  const { describe, it, expect, beforeAll, afterAll } = runner;
  let app: Driver;
  const name = (label: string) => `${kind}/${label}`;
  const insert = (label: string) => `INSERT INTO items (name) VALUES ('${name(label)}')`;
  const count = async (...labels: string[]) => {
    const { rows } = await app.query('SELECT count(*)::int AS n FROM items WHERE name = ANY($1)', [
      labels.map(name),
    ]);
    return rows[0]!.n;
  };
  const committed = async (...labels: string[]) =>
    (
      await observe<{ n: number }>(
        target.databaseUrl(),
        'SELECT count(*)::int AS n FROM items WHERE name = ANY($1)',
        [labels.map(name)],
      )
    )[0]!.n;

  // node-postgres itself is given the test database's own address (as read at module load); the libraries on
  // top of it the endpoint's, which pgtwin takes over in process too.
  const appUrl = () =>
    kind === 'pg Client' || kind === 'pg Pool' ? target.databaseUrl() : target.clientUrl();
  beforeAll(() => {
    app = createDriver(kind, appUrl());
  });
  afterAll(() =>
    withinDeadline(app.end(), HANG_DEADLINE_MS, 'ending the application’s connections').catch(
      () => undefined,
    ),
  );

  describe('tests do not see each other’s data', () => {
    it('a row written in one test is visible in it', async () => {
      await app.query(insert('isolated'));
      expect(await count('isolated')).toBe(1);
    });
    it('is gone in the next test, and was never committed', async () => {
      expect(await count('isolated')).toBe(0);
      expect(await committed('isolated')).toBe(0);
    });
  });

  describe('autocommit emulation', () => {
    it('a failing statement (unique violation) does not poison the statements after it', async () => {
      await app.query(insert('duplicate'));
      await expect(app.query(insert('duplicate'))).rejects.toMatchObject({
        code: '23505',
        constraint: 'items_name_key',
      });
      await app.query(insert('after-failure'));
      expect(await count('duplicate', 'after-failure')).toBe(2);
    });
  });

  describe('a first statement that writes through a SELECT', () => {
    it('runs inside the test transaction', async () => {
      const { rows } = await app.query('SELECT add_item($1) AS id', [name('via-select')]);
      expect(rows[0]!.id).toEqual(expect.any(Number));
    });
    it('and is rolled back with the test', async () => {
      expect(await count('via-select')).toBe(0);
      expect(await committed('via-select')).toBe(0);
    });
  });

  describe('concurrency', () => {
    it('holds two connections at once without hanging', async () => {
      await withinDeadline(
        app.twoConnections(async (a, b) => {
          await a.query(insert('first-connection'));
          await b.query(insert('second-connection'));
        }),
        HANG_DEADLINE_MS,
        'holding two connections',
      );
      expect(await count('first-connection', 'second-connection')).toBe(2);
    });

    it('runs concurrent queries (Promise.all) without hanging', async () => {
      const labels = ['c1', 'c2', 'c3', 'c4', 'c5'];
      await withinDeadline(
        Promise.all(labels.map((label) => app.query(insert(label)))),
        HANG_DEADLINE_MS,
        'Promise.all',
      );
      expect(await count(...labels)).toBe(5);
    });

    // Knex queues for its own pool (tarn) and fails after its acquireConnectionTimeout, with or without pgtwin;
    // so do postgres.js and slonik; a child process's pool is out of pgtwin's reach.
    if (POOL_GUARDED.has(kind))
      it('a test that holds every client of its pool and asks for one more fails fast, saying why', async () => {
        const small = createDriver(kind, appUrl(), 2);
        try {
          const third = small.pinned(() => small.pinned(() => small.query('SELECT 1')));
          await expect(withinDeadline(third, HANG_DEADLINE_MS, 'a third checkout')).rejects.toThrow(
            /clients \(its max\) are all checked out inside the test/,
          );
        } finally {
          await withinDeadline(small.end(), HANG_DEADLINE_MS, 'ending the pool').catch(() => undefined);
        }
      });
  });

  describe('application transactions nest inside the test transaction', () => {
    it('commits an application transaction', async () => {
      await app.transaction((tx) => tx.query(insert('tx-committed')));
      expect(await count('tx-committed')).toBe(1);
    });

    it('rolls back an application transaction', async () => {
      const failing = app.transaction(async (tx) => {
        await tx.query(insert('tx-rolled-back'));
        throw new Error('application rollback');
      });
      await expect(failing).rejects.toThrow('application rollback');
      expect(await count('tx-rolled-back')).toBe(0);
    });

    it('rolls back a failed nested transaction (savepoint) alone', async () => {
      await app.transaction(async (tx) => {
        await tx.query(insert('outer'));
        const inner = tx.transaction(async (nested) => {
          await nested.query(insert('inner'));
          throw new Error('inner rollback');
        });
        await expect(inner).rejects.toThrow('inner rollback');
        await tx.query(insert('outer-after'));
      });
      expect(await count('outer', 'outer-after')).toBe(2);
      expect(await count('inner')).toBe(0);
    });

    it('an error inside an application transaction aborts it, as on the server', async () => {
      await app.query(insert('taken'));
      await app.pinned(async (connection) => {
        await connection.query('BEGIN');
        await expect(connection.query(insert('taken'))).rejects.toMatchObject({ code: '23505' });
        await expect(connection.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
        const commit = await connection.query('COMMIT');
        if (commit.command !== undefined) expect(commit.command).toBe('ROLLBACK');
        expect((await connection.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      });
    });

    it('accepts every spelling of transaction control', async () => {
      const spellings: Array<[begin: string, end: string, keeps: boolean]> = [
        ['begin work', 'commit work', true],
        ['START TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'END', true],
        ['BEGIN ISOLATION LEVEL REPEATABLE READ, READ WRITE', 'COMMIT AND NO CHAIN', true],
        ['/* leading comment */ -- and a line comment\n  BEGIN;', '\n\tCOMMIT TRANSACTION;', true],
        ['BEGIN TRANSACTION', 'ABORT', false],
        ['Begin', 'ROLLBACK WORK', false],
      ];
      await app.pinned(async (connection) => {
        for (const [i, [begin, end]] of spellings.entries()) {
          await connection.query(begin);
          if (i === 0) await connection.query('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
          await connection.query(insert(`spelling-${i}`));
          await connection.query(end);
        }
      });
      for (const [i, [, , keeps]] of spellings.entries())
        expect(await count(`spelling-${i}`)).toBe(keeps ? 1 : 0);
    });

    it('application savepoints (SAVEPOINT, RELEASE, ROLLBACK TO) behave as on the server', async () => {
      await app.pinned(async (connection) => {
        await connection.query('BEGIN');
        await connection.query(insert('sp-a'));
        await connection.query('SAVEPOINT "Sp One"');
        await connection.query(insert('sp-b'));
        await connection.query('ROLLBACK TO SAVEPOINT "Sp One"');
        await connection.query(insert('sp-c'));
        await connection.query('RELEASE "Sp One"');
        await connection.query('savepoint two');
        await connection.query(insert('sp-d'));
        await connection.query('release savepoint TWO');
        await connection.query('COMMIT');
      });
      expect(await count('sp-a', 'sp-c', 'sp-d')).toBe(3);
      expect(await count('sp-b')).toBe(0);
    });

    it('SAVEPOINT outside a transaction fails and COMMIT outside one is a no-op, as on the server', async () => {
      await app.pinned(async (connection) => {
        await expect(connection.query('SAVEPOINT nowhere')).rejects.toMatchObject({ code: '25P01' });
        await connection.query('COMMIT');
        await connection.query(insert('after-stray-commit'));
      });
      expect(await count('after-stray-commit')).toBe(1);
    });

    it('checks deferred constraints at the application’s COMMIT', async () => {
      const id = CLIENT_KINDS.indexOf(kind) + 1;
      const orphan = app.transaction((tx) => tx.query(`INSERT INTO children VALUES (${id}, ${id})`));
      await expect(orphan).rejects.toMatchObject({ code: '23503' });
      expect((await app.query('SELECT count(*)::int AS n FROM children')).rows[0]!.n).toBe(0);
    });
  });

  // slonik refuses several statements in one query.
  if (kind !== 'slonik')
    describe('a multi-statement string with BEGIN and COMMIT', () => {
      it('commits only its own transaction', async () => {
        await app.pinned((connection) => connection.query(`BEGIN; ${insert('multi')}; COMMIT`));
        expect(await count('multi')).toBe(1);
      });
      it('so its row is gone in the next test', async () => {
        expect(await committed('multi')).toBe(0);
      });
    });

  describe('a failing test', () => {
    runner.failing('throws after writing', async () => {
      await app.query(insert('failed-test'));
      throw new Error('the test fails');
    });
    it('and is still rolled back', async () => {
      expect(await count('failed-test')).toBe(0);
      expect(await committed('failed-test')).toBe(0);
    });
  });

  describe('a timed-out test', () => {
    runner.failing(
      'times out while a statement runs',
      async () => {
        await app.query(insert('timed-out-test'));
        await app.query('SELECT pg_sleep(3)');
      },
      300,
    );
    it('and is still rolled back', async () => {
      expect(await count('timed-out-test')).toBe(0);
      expect(await committed('timed-out-test')).toBe(0);
    });
  });

  describe('the application ending its pool', () => {
    it('pool.end() (or client.end()) in one test', async () => {
      const own = createDriver(kind, appUrl());
      await own.query(insert('before-end'));
      await own.end();
    });
    it('does not break the next test', async () => {
      const own = createDriver(kind, appUrl());
      try {
        await own.query(insert('after-end'));
        const { rows } = await own.query('SELECT count(*)::int AS n FROM items WHERE name = $1', [
          name('after-end'),
        ]);
        expect(rows[0]!.n).toBe(1);
      } finally {
        await own.end();
      }
      expect(await committed('before-end', 'after-end')).toBe(0);
    });
  });

  describe('DISCARD ALL, the connection reset of slonik and other pools', () => {
    const lockKey = 4300 + CLIENT_KINDS.indexOf(kind);
    it('resets the session as the server would and keeps the test’s rows', async () => {
      await app.pinned(async (connection) => {
        await connection.query(insert('before-discard'));
        await connection.query('SET search_path TO other_schema, public');
        await connection.query('CREATE TEMP TABLE discarded_rows (x int)');
        await connection.query(`SELECT pg_advisory_lock(${lockKey})`);
        await connection.query('DISCARD ALL');
        expect((await connection.query('SHOW search_path')).rows[0]!.search_path).toBe('"$user", public');
        expect(
          (await connection.query("SELECT to_regclass('pg_temp.discarded_rows') AS t")).rows[0]!.t,
        ).toBeNull();
      });
      const [lock] = await observe<{ free: boolean }>(
        target.databaseUrl(),
        'SELECT pg_try_advisory_lock($1) AS free',
        [lockKey],
      );
      expect(lock!.free).toBe(true);
      expect(await count('before-discard')).toBe(1);
    });
    it('inside an application transaction fails as on the server (25001)', async () => {
      await app.pinned(async (connection) => {
        await connection.query('BEGIN');
        await expect(connection.query('DISCARD ALL')).rejects.toMatchObject({ code: '25001' });
        await connection.query('ROLLBACK');
      });
    });
  });

  describe('session state does not reach the next test', () => {
    const lockKey = 4200 + CLIENT_KINDS.indexOf(kind);
    it('a test changes search_path, creates a temp table, takes an advisory lock and prepares a statement', async () => {
      await app.pinned(async (connection) => {
        await connection.query('SET search_path TO other_schema, public');
        await connection.query('CREATE TEMP TABLE scratch_rows (x int)');
        await connection.query(`SELECT pg_advisory_lock(${lockKey})`);
        await connection.query(`PREPARE prepared_${lockKey} AS SELECT 1`);
      });
    });
    it('the next test sees none of it', async () => {
      await app.pinned(async (connection) => {
        expect((await connection.query('SHOW search_path')).rows[0]!.search_path).toBe('"$user", public');
        expect(
          (await connection.query("SELECT to_regclass('pg_temp.scratch_rows') AS t")).rows[0]!.t,
        ).toBeNull();
        const prepared = await connection.query(
          'SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = $1',
          [`prepared_${lockKey}`],
        );
        expect(prepared.rows[0]!.n).toBe(0);
      });
      const [lock] = await observe<{ free: boolean }>(
        target.databaseUrl(),
        'SELECT pg_try_advisory_lock($1) AS free',
        [lockKey],
      );
      expect(lock!.free).toBe(true);
    });
  });
}
