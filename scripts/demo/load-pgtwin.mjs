import { createJiti } from 'jiti';

const jiti = createJiti(import.meta.url);

/**
 * The parts of pgtwin the demo drives directly: the public API, and the server provider and global setup,
 * which are internal (the presets use them). Loaded from source with jiti, as pgtwin loads TypeScript config
 * files, together with the contentgen fixture that builds the demo's production. The example suite, by
 * contrast, runs on the built package (`pgtwin/vitest`), as a user's suite does.
 */
export async function loadPgtwin() {
  // One after the other: jiti shares its module cache, so the layers load once.
  const api = await jiti.import('../../src/index.ts');
  const provider = {
    ...(await jiti.import('../../src/provider/start-server.ts')),
    ...(await jiti.import('../../src/provider/probe-postgres.ts')),
  };
  const pipeline = await jiti.import('../../src/pipeline/global-setup.ts');
  const fixture = await jiti.import('../../fixtures/contentgen/index.ts');
  return { ...api, ...provider, ...pipeline, fixture };
}
