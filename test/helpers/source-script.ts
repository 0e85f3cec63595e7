import path from 'node:path';
import { bundleSource } from '../../scripts/bundle-source.mjs';

const bundles = new Map<string, Promise<string>>();

/**
 * The TypeScript file `entry`, a child process's script, bundled (once per test process) into a module
 * `node` runs: pgtwin's sources without a build, as the test files themselves run them.
 */
export function sourceScript(entry: string): Promise<string> {
  let bundle = bundles.get(entry);
  if (!bundle) {
    bundle = bundleSource({ entry, name: `${path.basename(entry, '.ts')}.mjs` });
    bundles.set(entry, bundle);
  }
  return bundle;
}
