import type { TwinSetup } from '../../src/pipeline/global-setup.js';

/** The parts of Jest's project config the global setup reads. */
export interface JestProjectConfig {
  rootDir: string;
  globals?: { pgtwin?: unknown };
}

const KEY = Symbol.for('pgtwin.jest.twin');

/**
 * The prepared database of this Jest process, kept on `globalThis`: global setup and teardown are separate
 * bundles, and in watch mode both run again for each re-run in the same process.
 */
export const jestTwin = {
  get current(): TwinSetup | undefined {
    return (globalThis as { [KEY]?: TwinSetup })[KEY];
  },
  set current(twin: TwinSetup | undefined) {
    (globalThis as { [KEY]?: TwinSetup })[KEY] = twin;
  },
};
