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
export function installTestFileHooks(
  hooks: RunnerHooks,
  handoff: TwinHandoff,
  /** Called with where tests should connect: the wire endpoint once it listens, the database after the file. */
  onServed?: (target: TargetFields) => void,
): void {
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
  const isolated = installIsolationHooks(
    {
      beforeAll: hooks.beforeAll,
      afterAll: hooks.afterAll,
      beforeEach: unlessOptedOut(hooks.beforeEach),
      afterEach: unlessOptedOut(hooks.afterEach),
    },
    { ...new DatabaseTarget(target).clientConfig(), endpoint: true },
  );
  // Clients that read the environment or `inject('pgtwin')` when they connect (an app server started in a
  // beforeAll, any child process) reach the test transaction through the endpoint; in-process `pg` clients
  // given its address are taken over directly.
  const serve = (served: TargetFields) => {
    Object.assign(process.env, workerEnvironment(served));
    onServed?.(served);
  };
  hooks.beforeAll(async () => {
    const address = isolated.isolation.endpoint;
    if (!address) return;
    // The endpoint speaks plain TCP on loopback and applies the configured startup options itself.
    const { ssl: _ssl, options: _options, ...plain } = target;
    serve({ ...plain, host: address.host, port: address.port });
  });
  hooks.afterAll(async () => serve(target));

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
