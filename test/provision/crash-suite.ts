import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createContentgenProduction, FIXTURE_SIZES } from '../../fixtures/contentgen/index.js';
import { CLI, cliEnv, emptyDir, runCli } from '../cli/run-cli.js';
import { adminQuery, databaseUrl, dropOwnedDatabases, useScratch } from '../helpers/databases.js';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { sourceScript } from '../helpers/source-script.js';
import { SEED_HELD } from './crash-factories.js';
import {
  blockCreateDatabase,
  databasesState,
  killAllWatched,
  blockTableReads,
  recoveryProblems,
  releaseAllBlocks,
  spawnWatched,
  templateOf,
  waitForBackendsGone,
  waitForStatementsDone,
  waitForWipReleased,
  type Watched,
} from './crash-harness.js';

// pgtwin's promise: a process killed at any point leaves the old state or nothing, and the next run of any
// kind cleans up after it. Each case kills a real process (SIGKILL, no chance to clean up) at a point found
// from its output or from the server's lock table, never by sleeping, then checks the next run succeeds and
// leaves the server as a clean run would.

const ROOT = path.resolve(import.meta.dirname, '../..');
const RUN_SETUP = path.join(import.meta.dirname, 'run-setup.ts');
const VITEST = path.join(ROOT, 'node_modules/vitest/vitest.mjs');
const PROJECT = path.join(import.meta.dirname, 'crash-project');
const MIRRORED = ['public.object_models', 'public.prompts'];
const SEEDED = ['public.clients', 'public.projects'];

const SEED = {
  'public.clients': [{ $key: 'acme', name: 'Acme Corp', slug: 'acme', email: 'team@acme.test' }],
  'public.projects': [
    { slug: 'launch', name: 'Launch', client_id: { $ref: 'public.clients.acme' } },
    { slug: 'docs', name: 'Docs', client_id: { $ref: 'public.clients.acme' } },
  ],
};

/** The parts of the crash suite; each test file runs some, so the parts run in parallel. */
export type CrashPart = 'phases' | 'creates' | 'reset' | 'vitest';

/**
 * Kills `pgtwin setup`, `pgtwin reset` and a Vitest run with SIGKILL at each phase boundary and inside each
 * CREATE DATABASE, then checks the next run succeeds and leaves no leftover. Each calling file gets its own
 * production, test database and role.
 */
export function crashSuite(parts: readonly CrashPart[]): void {
  const scratch = useScratch('crash');
  let production: string;
  let testDb: string;
  let role: string;
  let env: Record<string, string>;
  let dir: string;
  let seedFile: string;
  /** Every database name on the server before any pgtwin run. */
  let before: Set<string>;
  /** The template a clean setup of the CLI's configuration publishes. */
  let cliTemplate: string;

  beforeAll(async () => {
    before = new Set((await databasesState()).map((row) => row.name));
    production = (await scratch.database('prod')).name;
    await createContentgenProduction(databaseUrl(production), { data: FIXTURE_SIZES.tiny });
    testDb = scratch.databaseName('test');
    role = scratch.roleName('user');
    dir = emptyDir();
    seedFile = path.join(dir, 'seed_data.json');
    writeSeed(SEED);
    writeFileSync(
      path.join(dir, 'pgtwin.config.json'),
      JSON.stringify({ seeds: seedFile, factories: path.join(import.meta.dirname, 'crash-factories.ts') }),
    );
    env = cliEnv({ DB_NAME: production, TEST_DB_NAME: testDb, TEST_DB_USER: role });
    before.add(production);

    const first = await cleanSetup();
    cliTemplate = first.template;
    // The expected set: what one clean run leaves.
    expect(
      recoveryProblems(await databasesState(), before, { role, test: testDb, template: cliTemplate }),
    ).toEqual([]);
    serverClean = true;
    afterAll(async () => {
      // pgtwin's templates and whatever the killed runs left (wip, trash, build, worker copies) belong to the role.
      await releaseAllBlocks();
      await killAllWatched();
      await dropOwnedDatabases(role);
    });
  });

  afterEach(async () => {
    await releaseAllBlocks();
    await killAllWatched();
  });

  function writeSeed(document: unknown): void {
    writeFileSync(seedFile, JSON.stringify(document, null, 2));
  }

  /** `pgtwin ...args` in the project directory, watched. */
  function cli(args: string[], extra: Record<string, string> = {}): Watched {
    return spawnWatched([CLI, ...args], { env: { ...env, ...extra }, cwd: dir });
  }

  /** The global setup with two workers, through the API in a child process (the CLI runs one worker). */
  async function apiSetup(extra: Record<string, string> = {}): Promise<Watched> {
    return spawnWatched([await sourceScript(RUN_SETUP)], {
      env: { ...env, CRASH_WORKERS: '2', ...extra },
      cwd: dir,
    });
  }

  /** The Vitest runner on crash-project with two workers (so worker copies exist). */
  function vitestRun(extra: Record<string, string> = {}): Watched {
    return spawnWatched([VITEST, 'run', '--root', PROJECT, '--maxWorkers=2'], {
      env: { ...env, ...extra },
      cwd: ROOT,
    });
  }

  /** Runs a watched process to its end; returns its exit code and output. */
  async function finish(watched: Watched): Promise<{ code: number | null; output: string }> {
    const code = await watched.exited;
    // 'exit' may come before the last lines are read.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { code, output: watched.output() };
  }

  /**
   * Puts the server back into the state of one clean run: drops what this file's role owns except the CLI's
   * template (so the cache still counts), then runs `pgtwin setup`, which must succeed.
   */
  async function cleanSetup(): Promise<{ template: string }> {
    // A failed run may exit with a worker copy's CREATE DATABASE still running on the server.
    if (role !== undefined) await waitForStatementsDone([testDb, role]);
    const { rows } = await adminQuery<{ name: string; invalid: boolean }>(
      `SELECT datname AS name, datconnlimit = -2 AS invalid FROM pg_database
        WHERE pg_get_userbyid(datdba) = $1 AND datname <> $2`,
      [role, cliTemplate ?? ''],
    );
    for (const { name, invalid } of rows) {
      // An interrupted DROP leaves a database invalid, and PostgreSQL refuses to ALTER it (it can only be dropped).
      if (!invalid) await adminQuery(`ALTER DATABASE "${name}" WITH IS_TEMPLATE false`);
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    }
    const result = await runCli(['setup', '--json'], { env, cwd: dir });
    if (result.code !== 0) throw new Error(`The clean setup failed (exit ${result.code}):\n${result.stderr}`);
    return { template: result.json<{ template: string }>().template };
  }

  /** Whether the last case left the server as a clean CLI setup does, so the next needs no clean setup first. */
  let serverClean = false;

  /** The start of every case: the state of one clean `pgtwin setup` (run only when the last case left another). */
  async function freshStart(): Promise<void> {
    if (!serverClean) await cleanSetup();
    serverClean = false;
  }

  /** The recovery checks of every case: the server holds what a clean run leaves, and nothing else. */
  async function expectCleanServer(template: string | undefined = cliTemplate): Promise<void> {
    // Templates of other projects (the Vitest project has its own directory) are not superseded by this one's.
    expect(
      recoveryProblems(await databasesState(), before, {
        role,
        test: testDb,
        template,
        alsoKept: [cliTemplate],
      }),
    ).toEqual([]);
    serverClean = template === cliTemplate;
  }

  /** After a kill: `pgtwin setup` as usual succeeds and the server is as after a clean run. */
  async function expectSetupRecovers(): Promise<void> {
    await waitForWipReleased(role);
    const next = await finish(cli(['setup']));
    expect(next.code, next.output).toBe(0);
    await expectCleanServer(templateOf(next.output));
  }

  /** After a kill: the two-worker setup (API) succeeds and the server is as after a clean run. */
  async function expectWorkerSetupRecovers(): Promise<void> {
    await waitForWipReleased(role);
    const next = await finish(await apiSetup());
    expect(next.code, next.output).toBe(0);
    await expectCleanServer(templateOf(next.output));
  }

  /** Clears the "left clean" flag of a test or worker database's marker, as a run that committed outside its tests would. */
  async function clearCleanFlag(database: string): Promise<void> {
    const { rows } = await adminQuery<{ comment: string }>(
      `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`,
      [database],
    );
    const marker = JSON.parse(rows[0]!.comment.slice('pgtwin:'.length)) as Record<string, unknown>;
    delete marker.clean;
    await adminQuery(
      `COMMENT ON DATABASE "${database}" IS 'pgtwin:${JSON.stringify(marker).replaceAll("'", "''")}'`,
    );
  }

  /** Row counts of the mirrored and seeded tables of the test database. */
  async function testCounts(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const table of [...MIRRORED, ...SEEDED]) {
      const { rows } = await adminQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${table}`,
        [],
        databaseUrl(testDb),
      ).catch((error: Error) => ({ rows: [{ n: -1, error: error.message }] }));
      counts[table] = rows[0]!.n;
    }
    return counts;
  }

  /**
   * Kills the process while its CREATE DATABASE waits on the block, then lets the orphaned backend finish
   * it (the leftover the next run must clean) and waits until nothing of the killed run is still running.
   */
  async function killInsideCreate(
    killed: Watched,
    block: { release(): Promise<number[]> },
    waiting: readonly { pid: number }[],
  ): Promise<void> {
    await killed.kill();
    const orphans = await block.release();
    await waitForBackendsGone([...orphans, ...waiting.map((backend) => backend.pid)]);
    await waitForStatementsDone([testDb, role]);
  }

  /** Fails the wait on a process that ended (it can no longer reach the point the test waits for). */
  const endedEarly = (watched: Watched) => () =>
    watched.done() ? `the process ended early; its output:\n${watched.output()}` : undefined;

  const createsFrom = (template: string) => (query: string) =>
    new RegExp(`TEMPLATE\\s+"?${template}"?`, 'i').test(query);

  if (parts.includes('phases'))
    describe(
      'a killed pgtwin setup leaves the old state or nothing; the next setup succeeds and cleans up',
      { timeout: CHILD_TEST_TIMEOUT_MS },
      () => {
        it.each(['config', 'provision', 'clone', 'sync', 'seed', 'template'])(
          'setup killed as the %s phase line appears (building the template)',
          async (phase) => {
            await freshStart();
            const killed = cli(['setup'], { PGTWIN_REBUILD: '1' });
            await killed.waitForLine(new RegExp(`^\\[pgtwin\\] ${phase} `), { kill: true });
            await killed.exited;
            await expectSetupRecovers();
          },
        );

        it('two-worker setup (API) killed as the workers phase line appears', async () => {
          await freshStart();
          const killed = await apiSetup();
          await killed.waitForLine(/^\[pgtwin\] workers /, { kill: true });
          await killed.exited;
          await expectWorkerSetupRecovers();
        });
      },
    );

  if (parts.includes('creates'))
    describe(
      'a setup killed inside CREATE DATABASE (the orphaned backend then completes it)',
      { timeout: CHILD_TEST_TIMEOUT_MS },
      () => {
        it('killed while creating the build database', async () => {
          await freshStart();
          // A build creates from template1 (or template0): held only until the build's CREATE DATABASE waits.
          const block = await blockCreateDatabase(['template0', 'template1']);
          const killed = cli(['setup'], { PGTWIN_REBUILD: '1' });
          const waiting = await block.waitForCreate((query) => query.includes(role), {
            abort: endedEarly(killed),
          });
          await killInsideCreate(killed, block, waiting);
          await expectSetupRecovers();
        });

        it('killed while copying the template to the test database', async () => {
          await freshStart();
          // A clean previous run's test database is kept without a copy: make this one need the copy.
          await clearCleanFlag(testDb);
          const block = await blockCreateDatabase([cliTemplate]);
          const killed = cli(['setup']);
          const waiting = await block.waitForCreate(createsFrom(cliTemplate), { abort: endedEarly(killed) });
          await killInsideCreate(killed, block, waiting);
          await expectSetupRecovers();
        });

        it('killed while copying the template to a worker database (two workers, API)', async () => {
          await freshStart();
          // Skipping the test database's copy below needs one: clear the flag that would keep it as it is.
          await clearCleanFlag(testDb);
          const block = await blockCreateDatabase([cliTemplate]);
          const killed = await apiSetup();
          // The first copy is the test database's; the workers' come after it.
          const waiting = await block.waitForCreate(createsFrom(cliTemplate), {
            skip: 1,
            abort: endedEarly(killed),
          });
          await killInsideCreate(killed, block, waiting);
          await expectWorkerSetupRecovers();
        });
      },
    );

  if (parts.includes('reset'))
    describe(
      'a killed or failing pgtwin reset leaves the previous state',
      { timeout: CHILD_TEST_TIMEOUT_MS },
      () => {
        it('reset killed during its sync (its COPY from production waiting on a lock)', async () => {
          await freshStart();
          const previous = await testCounts();
          const lock = await blockTableReads(production, MIRRORED);
          const killed = cli(['reset']);
          const blocked = await lock.waitForBlocked({ abort: endedEarly(killed) });
          expect.soft(blocked.query).toMatch(/^COPY /);
          await killed.kill();
          await lock.release();
          await waitForBackendsGone([blocked.pid]);

          expect.soft(await testCounts(), 'the state before the killed reset').toEqual(previous);
          const next = await finish(cli(['reset']));
          expect(next.code, next.output).toBe(0);
          expect(await testCounts()).toEqual(previous);
          await expectCleanServer();
        });

        it('reset killed during its seed (a factory stops the process inside the seed)', async () => {
          await freshStart();
          const previous = await testCounts();
          const killed = cli(['reset'], { CRASH_HOLD_SEED: '1' });
          await killed.waitForLine(new RegExp(`^${SEED_HELD}$`), { kill: true });
          await killed.exited;

          expect.soft(await testCounts(), 'the state before the killed reset').toEqual(previous);
          const next = await finish(cli(['reset']));
          expect(next.code, next.output).toBe(0);
          expect(await testCounts()).toEqual(previous);
          await expectCleanServer();
        });

        it('a reset whose seed file is bad exits 4 and leaves the previous seed rows', async () => {
          await freshStart();
          const previous = await testCounts();
          writeSeed({ 'public.clients': [{ name: 'Broken', slug: 'broken', no_such_column: 1 }] });
          try {
            const failed = await finish(cli(['reset']));
            expect.soft(failed.code, failed.output).toBe(4);
          } finally {
            writeSeed(SEED);
          }
          expect(await testCounts()).toEqual(previous);
          await expectCleanServer();
        });
      },
    );

  if (parts.includes('vitest'))
    describe(
      'a killed Vitest run (two workers): the next run passes',
      { timeout: CHILD_TEST_TIMEOUT_MS },
      () => {
        it('killed while its global setup copies the worker databases', async () => {
          await freshStart();
          // The project's own template: published by a first clean run.
          const first = await finish(vitestRun());
          expect(first.code, first.output).toBe(0);
          const template = templateOf(first.output)!;
          expect(template).toBeDefined();

          // The first run left the test and worker databases clean: make them all need the copy.
          for (const database of [testDb, `${testDb}_w1`, `${testDb}_w2`]) await clearCleanFlag(database);
          const block = await blockCreateDatabase([template]);
          const killed = vitestRun();
          const waiting = await block.waitForCreate(createsFrom(template), {
            skip: 1,
            abort: endedEarly(killed),
          });
          await killInsideCreate(killed, block, waiting);

          const next = await finish(vitestRun());
          expect(next.code, next.output).toBe(0);
          expect(next.output).toMatch(/2 passed/);
          await expectCleanServer(templateOf(next.output));
        });

        it('killed while a test is running', async () => {
          await freshStart();
          const killed = vitestRun({ CRASH_HOLD_TEST: '1' });
          await killed.waitForLine(/^crash-test: test running$/, { kill: true });
          await killed.exited;

          const next = await finish(vitestRun());
          expect(next.code, next.output).toBe(0);
          expect(next.output).toMatch(/2 passed/);
          await expectCleanServer(templateOf(next.output));
        });
      },
    );
}
