// Timeouts sized for a loaded 2-core machine shared with other runs, where a step that takes a second alone
// can take a minute. Each bounds only waiting, never an outcome: a longer limit lets a slow run finish, while
// a hang still fails, later.

/**
 * One child process: the `pgtwin` CLI, the demo, or Vitest or Jest on an example project. The demo, about a
 * minute alone, took over 240 s with two `npm test` runs and other work on the machine.
 */
export const CHILD_RUN_TIMEOUT_MS = 420_000;

/** A test that runs child processes one after another. */
export const CHILD_TEST_TIMEOUT_MS = 600_000;

/**
 * An `afterAll` that drops databases: `DROP DATABASE … WITH (FORCE)` ends the backends still connected and
 * waits for the server to remove the files, which under load took longer than Vitest's 10 s default.
 */
export const DROP_HOOK_TIMEOUT_MS = 180_000;
