import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { CONFIG_FILE_NAMES, type PgtwinConfig } from './pgtwin-config.js';

/** Finds and loads the config file; `undefined` when there is none. */
export async function loadConfigFile(
  rootDir: string,
  configFile: string | false | undefined,
): Promise<{ file: string; config: PgtwinConfig } | undefined> {
  if (configFile === false) return undefined;
  let file: string | undefined;
  if (configFile !== undefined) {
    file = path.resolve(rootDir, configFile);
    if (!existsSync(file)) {
      throw new ConfigError(
        'configFile',
        `The config file ${file} does not exist. Fix the path or omit configFile.`,
      );
    }
  } else {
    file = CONFIG_FILE_NAMES.map((name) => path.join(rootDir, name)).find((candidate) =>
      existsSync(candidate),
    );
    if (file === undefined) return undefined;
  }

  let loaded: unknown;
  try {
    if (file.endsWith('.json')) {
      loaded = JSON.parse(readFileSync(file, 'utf8'));
    } else {
      // jiti runs TypeScript config files without a build step, in ESM and CommonJS projects alike. Imported
      // here, not at the top: loading it costs every start-up a fifth of a second, and JSON needs none of it.
      const { createJiti } = await import('jiti');
      const jiti = createJiti(path.join(rootDir, 'noop.js'), { moduleCache: false });
      loaded = await jiti.import(file, { default: true });
    }
  } catch (error) {
    throw new ConfigError(
      'configFile',
      `Could not load the config file ${file}: ${(error as Error).message}. Fix the file or point configFile elsewhere.`,
      { cause: error },
    );
  }
  if (loaded === null || typeof loaded !== 'object' || Array.isArray(loaded)) {
    throw new ConfigError(
      'configFile',
      `The config file ${file} must export an object (export default defineConfig({...})), got ${Array.isArray(loaded) ? 'an array' : typeof loaded}.`,
    );
  }
  return { file, config: loaded as PgtwinConfig };
}
