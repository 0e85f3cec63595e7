import { availableParallelism } from 'node:os';
import type { TestProject } from 'vitest/node';
import { runGlobalSetup, type TwinSetup } from '../../src/pipeline/global-setup.js';
import { runnerError } from '../../src/pipeline/runner-error.js';
import { connectionDetails, workerEnvironment } from '../../src/pipeline/worker-handoff.js';
import type { PgtwinPluginOptions } from './index.js';
import { HANDOFF_KEY, OPTIONS_KEY } from './provide-keys.js';

/**
 * Vitest global setup: prepares the test database once per run (once per watch session; a re-run rebuilds only
 * when the seeds, factories, scripts or configuration changed), and one copy per worker when Vitest runs
 * several. Used by the plugin, or directly as `globalSetup: ['pgtwin/vitest/global-setup']`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const options: PgtwinPluginOptions = project.getProvidedContext()[OPTIONS_KEY] ?? {};
  const setupOptions = { rootDir: project.config.root, workers: maxWorkers(project), ...options };
  let twin: TwinSetup;
  try {
    twin = await runGlobalSetup(setupOptions);
  } catch (error) {
    const shown = await runnerError(error, setupOptions);
    // Vitest 4 reports a run whose global setup threw as "No test files found" unless the error is recorded.
    (
      project.vitest as unknown as { state?: { catchError(error: unknown, type: string): void } }
    ).state?.catchError(shown, 'pgtwin setup');
    throw shown;
  }
  const provide = () => {
    project.provide('pgtwin', connectionDetails(twin.test));
    project.provide(HANDOFF_KEY, twin.handoff());
  };
  provide();
  Object.assign(process.env, workerEnvironment(twin.handoff().test));
  project.onTestsRerun(async () => {
    try {
      if (await twin.refresh()) provide();
    } catch (error) {
      throw await runnerError(error, setupOptions);
    }
  });
  return () => twin.close();
}

/** How many workers Vitest runs at once: `maxWorkers` (1 without file parallelism), else Vitest's default. */
function maxWorkers(project: TestProject): number {
  const configured = project.config.maxWorkers || project.globalConfig.maxWorkers;
  if (configured) return configured;
  const cpus = availableParallelism();
  return project.config.watch ? Math.max(Math.floor(cpus / 2), 1) : Math.max(cpus - 1, 1);
}
