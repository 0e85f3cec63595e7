import { AsyncLocalStorage } from 'node:async_hooks';
import type { TestRun } from './session-connection.js';

/** The test whose asynchronous context the current code runs in: what a runner's per-test hook entered. */
const scope = new AsyncLocalStorage<TestRun>();

/** Runs `fn` so that every statement it issues, however deep in callbacks and promises, belongs to `test`. */
export function runInTestScope<T>(test: TestRun, fn: () => T): T {
  return scope.run(test, fn);
}

/** The test the current asynchronous context belongs to, if it was entered with {@link runInTestScope}. */
export function currentTestScope(): TestRun | undefined {
  return scope.getStore();
}
