import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { SeedError } from '../errors.js';

/**
 * The seed files `seeds` names, in load order: each entry is a `.json` file or a directory, whose `.json`
 * files load in name order. Relative paths are resolved against `rootDir`; a missing entry is a {@link SeedError}.
 *
 * @example
 * await resolveSeedFiles(['tests/data'], '/app') // ['/app/tests/data/01-clients.json', '/app/tests/data/02-projects.json']
 */
export async function resolveSeedFiles(
  seeds: string | readonly string[],
  rootDir = process.cwd(),
): Promise<string[]> {
  const files: string[] = [];
  for (const entry of typeof seeds === 'string' ? [seeds] : seeds) {
    const absolute = path.resolve(rootDir, entry);
    const info = await stat(absolute).catch(() => undefined);
    if (!info) {
      throw new SeedError(
        { file: entry, path: '$' },
        `Seed file or directory ${entry} does not exist (looked in ${absolute}). Create it or change "seeds" in the pgtwin config.`,
      );
    }
    if (!info.isDirectory()) {
      files.push(absolute);
      continue;
    }
    const names = (await readdir(absolute)).filter((name) => name.endsWith('.json')).sort();
    files.push(...names.map((name) => path.join(absolute, name)));
  }
  return files;
}
