import type { ResolveConfigOptions } from '../../src/config/pgtwin-config.js';
import { runGlobalSetup, type TwinSetup } from '../../src/pipeline/global-setup.js';
import { runnerError } from '../../src/pipeline/runner-error.js';
import { HANDOFF_VARIABLE, workerEnvironment } from '../../src/pipeline/worker-handoff.js';
import { jestTwin, type JestProjectConfig } from './jest-twin.js';

/**
 * Jest global setup (`preset: 'pgtwin'`): prepares the test database in the parent process, and one copy per
 * worker when Jest runs several (`maxWorkers`), and leaves their details in the environment, which the
 * workers inherit. Options come from `globals.pgtwin` in the Jest config. In watch mode the databases are
 * kept between runs and rebuilt only when their inputs changed.
 */
export default async function globalSetup(
  globalConfig: { maxWorkers?: number },
  projectConfig: JestProjectConfig,
): Promise<void> {
  const options = {
    rootDir: projectConfig.rootDir,
    workers: globalConfig.maxWorkers ?? 1,
    ...((projectConfig.globals?.pgtwin ?? {}) as ResolveConfigOptions),
  };
  try {
    const kept = jestTwin.current;
    if (kept) {
      // Workers are started for each run, so they see a new template's name.
      if (await kept.refresh()) handOff(kept);
      return;
    }
    const twin = await runGlobalSetup(options);
    jestTwin.current = twin;
    handOff(twin);
  } catch (error) {
    throw await runnerError(error, options);
  }
}

function handOff(twin: TwinSetup): void {
  const handoff = twin.handoff();
  process.env[HANDOFF_VARIABLE] = JSON.stringify(handoff);
  Object.assign(process.env, workerEnvironment(handoff.test));
}
