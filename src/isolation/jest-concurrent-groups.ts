import type { RunnerHooks } from './runner-hooks.js';

/** Where jest-circus keeps its event handlers, on the test file's global (Jest 30). */
const EVENT_HANDLERS = Symbol.for('EVENT_HANDLERS');

type CircusHandler = (event: { name: string }) => unknown;

/**
 * Jest 30 runs the `test.concurrent` tests of a `describe` as one group, without `beforeEach` /
 * `afterEach`. The returned hooks also run around each such group (jest-circus's `concurrent_tests_start`
 * and `concurrent_tests_end` events), so its tests share one transaction, rolled back after the last of
 * them, instead of committing. Without jest-circus's handlers (another runner) the hooks are unchanged.
 */
export function withConcurrentGroups(hooks: RunnerHooks): RunnerHooks {
  const handlers = (globalThis as { [EVENT_HANDLERS]?: CircusHandler[] })[EVENT_HANDLERS];
  if (!Array.isArray(handlers)) return hooks;
  const onEvent =
    (name: string, fn: () => Promise<unknown>): CircusHandler =>
    async (event) => {
      if (event.name === name) await fn();
    };
  return {
    ...hooks,
    beforeEach(fn) {
      hooks.beforeEach(fn);
      handlers.push(onEvent('concurrent_tests_start', fn));
    },
    afterEach(fn) {
      hooks.afterEach(fn);
      handlers.push(onEvent('concurrent_tests_end', fn));
    },
  };
}
