import type { TestProject } from 'vitest/node';
import { runGlobalSetup, type TwinSetup } from '../../src/pipeline/global-setup.js';
import { runnerError } from '../../src/pipeline/runner-error.js';
import { connectionDetails, workerEnvironment } from '../../src/pipeline/worker-handoff.js';
import type { PgtwinPluginOptions } from './index.js';
import { HANDOFF_KEY, OPTIONS_KEY } from './provide-keys.js';

/**
 * Vitest global setup: builds the test database once per run (once per watch session; a re-run rebuilds only
 * when the seeds, factories, scripts or configuration changed). Used by the plugin, or directly as
 * `globalSetup: ['pgtwin/vitest/global-setup']`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const options: PgtwinPluginOptions = project.getProvidedContext()[OPTIONS_KEY] ?? {};
  let twin: TwinSetup;
  try {
    twin = await runGlobalSetup({ rootDir: project.config.root, ...options });
  } catch (error) {
    throw runnerError(error);
  }
  project.provide('pgtwin', connectionDetails(twin.test));
  project.provide(HANDOFF_KEY, twin.handoff());
  Object.assign(process.env, workerEnvironment(twin.handoff().test));
  project.onTestsRerun(async () => {
    await twin.refresh().catch((error: unknown) => {
      throw runnerError(error);
    });
  });
  return () => twin.close();
}
