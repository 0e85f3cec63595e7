import type { ResolveConfigOptions } from '../../src/config/pgtwin-config.js';
import { runGlobalSetup } from '../../src/pipeline/global-setup.js';
import { runnerError } from '../../src/pipeline/runner-error.js';
import { HANDOFF_VARIABLE, workerEnvironment } from '../../src/pipeline/worker-handoff.js';
import { jestTwin, type JestProjectConfig } from './jest-twin.js';

/**
 * Jest global setup (`preset: 'pgtwin'`): builds the test database in the parent process and leaves its
 * details in the environment, which the workers inherit. Options come from `globals.pgtwin` in the Jest
 * config. In watch mode the database is kept between runs and rebuilt only when its inputs changed.
 */
export default async function globalSetup(
  _globalConfig: unknown,
  projectConfig: JestProjectConfig,
): Promise<void> {
  try {
    const kept = jestTwin.current;
    if (kept) {
      await kept.refresh();
      return;
    }
    const options = (projectConfig.globals?.pgtwin ?? {}) as ResolveConfigOptions;
    const twin = await runGlobalSetup({ rootDir: projectConfig.rootDir, ...options });
    jestTwin.current = twin;
    const handoff = twin.handoff();
    process.env[HANDOFF_VARIABLE] = JSON.stringify(handoff);
    Object.assign(process.env, workerEnvironment(handoff.test));
  } catch (error) {
    throw runnerError(error);
  }
}
