import { DatabaseTarget } from '../config/database-target.js';
import { IsolationError } from '../errors.js';
import { installIsolationHooks, type RunnerHooks } from '../isolation/runner-hooks.js';
import { ReadyCopies } from './ready-copies.js';
import {
  workerEnvironment,
  workerTestTarget,
  type TargetFields,
  type TwinHandoff,
} from './worker-handoff.js';

/** Shared through `globalThis`: the runner's setup file and the test file may load different copies of pgtwin. */
const FILE_STATE = Symbol.for('pgtwin.testFile');

interface FileState {
  /** Whether a test (its `beforeEach` hooks included) is running. */
  readonly inTest: boolean;
  /** The copy the running tests use when they opted out, else `undefined`. */
  readonly copy: TargetFields | undefined;
  optOutBlock(): void;
  optOutTest(): Promise<void>;
}

/**
 * The per-test-file wiring both runners' setup files call: points the worker's `TEST_DB_*` /
 * `TEST_DATABASE_URL` at its database (its own copy when the run has several workers, else the test
 * database), and runs every test in a rolled-back transaction unless the file, a `describe` or the test
 * itself opted out with {@link setIsolation}.
 */
export function installTestFileHooks(
  hooks: RunnerHooks,
  handoff: TwinHandoff,
  /**
   * Called with where tests should connect: the wire endpoint once it listens, an opted-out test's or block's
   * copy while it runs, the database after the file.
   */
  onServed?: (target: TargetFields) => void,
): void {
  const worker = workerTestTarget(handoff);
  // Where isolated tests connect: the worker's database, or its wire endpoint while the file runs.
  let base = worker;
  const pointAt = (target: TargetFields) => {
    Object.assign(process.env, workerEnvironment(target));
    onServed?.(target);
  };
  Object.assign(process.env, workerEnvironment(worker));
  let copies: Promise<ReadyCopies> | undefined;
  const pool = () => (copies ??= ReadyCopies.forWorker(handoff));
  // Innermost last: the copies of opted-out blocks now running, and of the running test.
  const blockCopies: TargetFields[] = [];
  let testCopy: TargetFields | undefined;
  let inTest = false;
  const current = () => testCopy ?? blockCopies.at(-1);

  // Copies of opted-out tests that ended, dropped while the next tests run. Not at once: under Jest the test's
  // own afterEach hooks (closing its clients) run after this file's.
  const retired: string[] = [];
  const releaseRetired = async () => {
    for (const database of retired.splice(0)) void (await pool()).release(database);
  };
  hooks.beforeEach(async () => {
    inTest = true;
    await releaseRetired();
  });
  hooks.afterEach(async () => {
    inTest = false;
    if (!testCopy) return;
    retired.push(testCopy.database);
    testCopy = undefined;
    pointAt(current() ?? base);
  });
  const unlessOptedOut =
    (register: RunnerHooks['beforeEach']): RunnerHooks['beforeEach'] =>
    (fn) =>
      register(async () => {
        if (blockCopies.length === 0) await fn();
      });
  const aroundEach = hooks.aroundEach;
  const isolated = installIsolationHooks(
    {
      beforeAll: hooks.beforeAll,
      afterAll: hooks.afterAll,
      beforeEach: unlessOptedOut(hooks.beforeEach),
      afterEach: unlessOptedOut(hooks.afterEach),
      aroundEach:
        aroundEach &&
        ((fn) =>
          // Vitest reads the hook's parameters: the context must be destructured for fixtures to work.
          aroundEach((runTest, { task }) => (blockCopies.length === 0 ? fn(runTest, { task }) : runTest()))),
    },
    {
      ...new DatabaseTarget(worker).clientConfig(),
      endpoint: true,
      maxConnections: handoff.isolation?.maxConnections,
    },
  );
  // Clients that read the environment or `inject('pgtwin')` when they connect (an app server started in a
  // beforeAll, any child process) reach the test transaction through the endpoint; in-process `pg` clients
  // given its address are taken over directly.
  hooks.beforeAll(async () => {
    const address = isolated.isolation.endpoint;
    if (!address) return;
    // The endpoint speaks plain TCP on loopback and applies the configured startup options itself.
    const { ssl: _ssl, options: _options, ...plain } = worker;
    base = { ...plain, host: address.host, port: address.port };
    pointAt(current() ?? base);
  });
  hooks.afterAll(async () => {
    base = worker;
    pointAt(current() ?? base);
  });
  // Registered last, so it runs after the file's other afterAll hooks under both runners' orders.
  hooks.afterAll(async () => {
    await releaseRetired();
    if (copies) await (await copies).settle();
  });

  const state: FileState = {
    get inTest() {
      return inTest;
    },
    get copy() {
      return current();
    },
    optOutBlock() {
      let copy: TargetFields | undefined;
      hooks.beforeAll(async () => {
        copy = (await (await pool()).take()).target;
        blockCopies.push(copy);
        pointAt(copy);
      });
      hooks.afterAll(async () => {
        if (!copy) return;
        blockCopies.splice(blockCopies.indexOf(copy), 1);
        pointAt(current() ?? base);
        // Awaited: under Jest this hook may run after the one that waits for the background work.
        await (await pool()).release(copy.database);
      });
    },
    async optOutTest() {
      // Inside an opted-out file or describe the test already commits on that block's copy.
      if (current()) return;
      testCopy = (await (await pool()).take()).target;
      pointAt(testCopy);
    },
  };
  (globalThis as { [FILE_STATE]?: FileState })[FILE_STATE] = state;
}

/**
 * The copy of the test database the running tests commit on when they opted out of isolation (a file, a
 * `describe` or the test itself), else `undefined`.
 */
export function optedOutCopy(): TargetFields | undefined {
  return (globalThis as { [FILE_STATE]?: FileState })[FILE_STATE]?.copy;
}

/**
 * `setIsolation(false)` at the top of a test file or inside a `describe`: those tests run without the test
 * transaction, on a fresh copy of the test database taken for them (`TEST_DB_NAME` / `TEST_DATABASE_URL`
 * point at it while they run) and dropped after them. Inside a test (or its `beforeEach`), awaited: that
 * test alone commits on a fresh copy from then on; clients connected before the call stay in the test
 * transaction of the worker's database. Read the connection settings when connecting, not when a module
 * loads. `setIsolation(true)` is the default and does nothing.
 */
export function setIsolation(enabled: boolean): Promise<void> {
  if (enabled) return Promise.resolve();
  const state = (globalThis as { [FILE_STATE]?: FileState })[FILE_STATE];
  if (!state) {
    throw new IsolationError(
      'not-enabled',
      "pgtwin.isolation(false) needs pgtwin's per-test setup file: use the pgtwin() plugin in the Vitest config (or setupFiles: ['pgtwin/vitest/setup']), or preset: 'pgtwin' in the Jest config.",
    );
  }
  if (state.inTest) return state.optOutTest();
  state.optOutBlock();
  return Promise.resolve();
}
