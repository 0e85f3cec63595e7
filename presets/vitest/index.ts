import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vitest/config';
import type { GlobalSetupOptions } from '../../src/pipeline/global-setup.js';
import { setIsolation } from '../../src/pipeline/test-file-hooks.js';
import type { PgtwinConnection, TwinHandoff } from '../../src/pipeline/worker-handoff.js';
import { OPTIONS_KEY } from './provide-keys.js';

export type { PgtwinConnection } from '../../src/pipeline/worker-handoff.js';

/** Options of the {@link pgtwin} plugin: pgtwin's configuration (over `pgtwin.config.*` and the environment). */
export type PgtwinPluginOptions = Omit<GlobalSetupOptions, 'logger' | 'startServer' | 'env'>;

declare module 'vitest' {
  interface ProvidedContext {
    /** The test database. Printing it never shows the password. */
    pgtwin: PgtwinConnection;
    /** @internal The plugin's options, for the global setup. */
    'pgtwin:options': PgtwinPluginOptions;
    /** @internal What the global setup hands the per-test setup file. */
    'pgtwin:handoff': TwinHandoff;
  }
}

/**
 * The Vitest plugin: adds pgtwin's global setup (builds the test database once per run) and its per-test
 * setup file (each test in a rolled-back transaction). `pgtwin.isolation(false)` in a test file or
 * `describe`, or awaited in a test, opts those tests out (they get a fresh copy of the database instead).
 *
 * @example
 * ```ts
 * // vitest.config.ts
 * import { defineConfig } from 'vitest/config';
 * import { pgtwin } from 'pgtwin/vitest';
 * export default defineConfig({ plugins: [pgtwin({ seeds: 'tests/seeds' })] });
 * ```
 */
export const pgtwin = Object.assign(
  (options: PgtwinPluginOptions = {}): Plugin => ({
    name: 'pgtwin',
    config: () => ({
      test: {
        globalSetup: [fileURLToPath(new URL('./global-setup.js', import.meta.url))],
        setupFiles: [fileURLToPath(new URL('./setup.js', import.meta.url))],
        provide: { [OPTIONS_KEY]: options },
      },
    }),
  }),
  {
    /**
     * `pgtwin.isolation(false)`: the tests of this file or `describe` commit for real, on a fresh copy of the
     * test database (`TEST_DATABASE_URL` and `inject('pgtwin')` point at it while they run). Awaited inside a
     * test, only that test does, from the call on.
     *
     * @example
     * ```ts
     * test('delivers NOTIFY', async () => {
     *   await pgtwin.isolation(false);
     *   const listener = new pg.Client(process.env.TEST_DATABASE_URL); // connects for real, to the copy
     * });
     * ```
     */
    isolation: setIsolation,
  },
);
