import { DatabaseTarget } from '../config/database-target.js';
import { IsolationError } from '../errors.js';
import { installIsolationHooks, type RunnerHooks } from '../isolation/runner-hooks.js';
import { createDatabaseCopy, dropDatabaseCopy } from './database-copy.js';
import {
  workerEnvironment,
  workerTestTarget,
  type TargetFields,
  type TwinHandoff,
} from './worker-handoff.js';

/** Shared through `globalThis`: the runner's setup file and the test file may load different copies of pgtwin. */
const FILE_STATE = Symbol.for('pgtwin.testFile');

interface FileState {
  optOut(): void;
}

/**
 * The per-test-file wiring both runners' setup files call: points the worker's `TEST_DB_*` /
 * `TEST_DATABASE_URL` at its database (its own copy when the run has several workers, else the test
 * database), and runs every test in a rolled-back transaction unless the
 * file or a `describe` opted out with {@link setIsolation}.
 */
export function installTestFileHooks(hooks: RunnerHooks, handoff: TwinHandoff): void {
  const target = workerTestTarget(handoff);
  Object.assign(process.env, workerEnvironment(target));
  // Depth of opted-out blocks now running; their tests get no test transaction.
  let optedOut = 0;
  const unlessOptedOut =
    (register: RunnerHooks['beforeEach']): RunnerHooks['beforeEach'] =>
    (fn) =>
      register(async () => {
        if (optedOut === 0) await fn();
      });
  const aroundEach = hooks.aroundEach;
  installIsolationHooks(
    {
      beforeAll: hooks.beforeAll,
      afterAll: hooks.afterAll,
      beforeEach: unlessOptedOut(hooks.beforeEach),
      afterEach: unlessOptedOut(hooks.afterEach),
      aroundEach:
        aroundEach &&
        ((fn) =>
          // Vitest reads the hook's parameters: the context must be destructured for fixtures to work.
          aroundEach((runTest, { task }) => (optedOut === 0 ? fn(runTest, { task }) : runTest()))),
    },
    { ...new DatabaseTarget(target).clientConfig(), maxConnections: handoff.isolation?.maxConnections },
  );

  const state: FileState = {
    optOut() {
      let copy: TargetFields | undefined;
      let saved: Record<string, string | undefined> = {};
      hooks.beforeAll(async () => {
        optedOut += 1;
        copy = await createDatabaseCopy(handoff);
        const environment = workerEnvironment(copy);
        saved = Object.fromEntries(Object.keys(environment).map((name) => [name, process.env[name]]));
        Object.assign(process.env, environment);
      });
      hooks.afterAll(async () => {
        for (const [name, value] of Object.entries(saved)) process.env[name] = value;
        optedOut -= 1;
        if (copy) await dropDatabaseCopy(handoff, copy);
      });
    },
  };
  (globalThis as { [FILE_STATE]?: FileState })[FILE_STATE] = state;
}

/**
 * `setIsolation(false)` at the top of a test file or inside a `describe`: those tests run without the test
 * transaction, on a fresh copy of the test database made for them (`TEST_DB_NAME` / `TEST_DATABASE_URL`
 * point at it while they run) and dropped after them. Read the connection settings when connecting, not
 * when a module loads. `setIsolation(true)` is the default and does nothing.
 */
export function setIsolation(enabled: boolean): void {
  if (enabled) return;
  const state = (globalThis as { [FILE_STATE]?: FileState })[FILE_STATE];
  if (!state) {
    throw new IsolationError(
      'not-enabled',
      "pgtwin.isolation(false) needs pgtwin's per-test setup file: use the pgtwin() plugin in the Vitest config (or setupFiles: ['pgtwin/vitest/setup']), or preset: 'pgtwin' in the Jest config.",
    );
  }
  state.optOut();
}
