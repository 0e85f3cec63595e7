import { setIsolation } from '../../src/pipeline/test-file-hooks.js';

/**
 * pgtwin's helpers for Jest test files.
 *
 * @example
 * ```js
 * const { pgtwin } = require('pgtwin/jest');
 * pgtwin.isolation(false); // this file's tests commit, on a fresh copy of the test database
 * ```
 */
export const pgtwin = Object.freeze({
  /**
   * `pgtwin.isolation(false)` at the top of a test file or inside a `describe`: those tests run without the
   * test transaction, on a fresh copy of the test database (`TEST_DATABASE_URL` points at it while they run).
   * Awaited inside a test (`await pgtwin.isolation(false)`), only that test does, from the call on.
   */
  isolation: setIsolation,
});
