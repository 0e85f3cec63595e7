import { IsolationError } from '../errors.js';
import { enableIsolation, type Isolation, type IsolationOptions } from './enable-isolation.js';

type Hook = (fn: () => Promise<unknown>) => void;

/** The lifecycle hooks of a test runner: Vitest's imports or Jest's globals. */
export interface RunnerHooks {
  beforeAll: Hook;
  beforeEach: Hook;
  afterEach: Hook;
  afterAll: Hook;
}

/** The isolation a test file's hooks manage; available once its `beforeAll` ran. */
export interface IsolationHooks {
  readonly isolation: Isolation;
}

/**
 * Registers hooks that isolate every test of the current file: enable before all tests, begin and roll
 * back around each (also when the test fails or times out), close after all. Call it at the top of the
 * file, before hooks of your own, so a `beforeAll` of yours runs after isolation is enabled.
 *
 * @example
 * // Jest: installIsolationHooks({ beforeAll, beforeEach, afterEach, afterAll }, { connectionString });
 */
export function installIsolationHooks(hooks: RunnerHooks, options: IsolationOptions): IsolationHooks {
  let isolation: Isolation | undefined;
  hooks.beforeAll(async () => {
    isolation = await enableIsolation(options);
  });
  hooks.beforeEach(async () => isolation?.begin());
  hooks.afterEach(async () => isolation?.rollback());
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
