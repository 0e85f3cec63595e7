import { IsolationError } from '../errors.js';
import { enableIsolation, type Isolation, type IsolationOptions } from './enable-isolation.js';

type Hook = (fn: () => Promise<unknown>) => void;

/** What a runner tells a hook wrapped around one test (Vitest's test context). */
export interface RunnerTestContext {
  readonly task: { readonly name: string };
}

/** A hook wrapped around each test, which runs the test by calling `runTest` (Vitest's `aroundEach`). */
export type AroundEachHook = (
  fn: (runTest: () => Promise<void>, context: RunnerTestContext) => Promise<void>,
) => void;

/** The lifecycle hooks of a test runner: Vitest's imports or Jest's globals. */
export interface RunnerHooks {
  beforeAll: Hook;
  beforeEach: Hook;
  afterEach: Hook;
  afterAll: Hook;
  /**
   * When the runner has it, each test runs inside it, in an asynchronous context of its own, so tests
   * running concurrently each get their own transaction; `beforeEach` / `afterEach` are then not used.
   */
  aroundEach?: AroundEachHook;
}

/** The isolation a test file's hooks manage; available once its `beforeAll` ran. */
export interface IsolationHooks {
  readonly isolation: Isolation;
}

/**
 * Registers hooks that isolate every test of the current file: enable before all tests, begin and roll
 * back around each (also when the test fails or times out), close after all. Call it at the top of the
 * file, before hooks of your own, so a `beforeAll` of yours runs after isolation is enabled. With
 * `aroundEach` (Vitest) concurrent tests each get a transaction and a connection of their own; with
 * `beforeEach` / `afterEach` alone, whatever runs between them shares one.
 *
 * @example
 * // Jest: installIsolationHooks({ beforeAll, beforeEach, afterEach, afterAll }, { connectionString });
 */
export function installIsolationHooks(hooks: RunnerHooks, options: IsolationOptions): IsolationHooks {
  let isolation: Isolation | undefined;
  hooks.beforeAll(async () => {
    isolation = await enableIsolation(options);
  });
  if (hooks.aroundEach) {
    // Vitest reads the hook's parameters: the context must be destructured for fixtures to work.
    hooks.aroundEach(async (runTest, { task }) =>
      isolation ? isolation.runTest(task.name, runTest) : runTest(),
    );
  } else {
    hooks.beforeEach(async () => isolation?.begin(currentJestTestName()));
    hooks.afterEach(async () => isolation?.rollback());
  }
  hooks.afterAll(async () => isolation?.close());
  return {
    get isolation() {
      if (!isolation) {
        throw new IsolationError(
          'not-enabled',
          'Isolation is enabled in beforeAll; use it from hooks or tests.',
        );
      }
      return isolation;
    },
  };
}

/** The running test's name under Jest (`expect.getState()`), for error messages; undefined elsewhere. */
function currentJestTestName(): string | undefined {
  const expect = (globalThis as { expect?: { getState?: () => { currentTestName?: string } } }).expect;
  return expect?.getState?.().currentTestName;
}
