import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { AnyFactory, UserFactories } from './factory-registry.js';

/**
 * Loads the user's factories module (`factories` in the config): its `factories` export, else its default
 * export, an object of fishery factories named after their tables. TypeScript modules load through jiti, so
 * no build step is needed.
 *
 * @example
 * ```ts
 * // tests/factories.ts
 * export const factories = { project: Factory.define<Project>(({ sequence }) => ({ slug: `p-${sequence}`, name: 'P' })) };
 * // setup
 * const user = await loadUserFactories('tests/factories.ts', rootDir);
 * ```
 */
export async function loadUserFactories(modulePath: string, rootDir = process.cwd()): Promise<UserFactories> {
  const file = path.resolve(rootDir, modulePath);
  let loaded: unknown;
  try {
    // Imported when needed: loading jiti costs a command's start-up a fifth of a second.
    const { createJiti } = await import('jiti');
    const jiti = createJiti(path.join(rootDir, 'noop.js'));
    loaded = await jiti.import(file);
  } catch (error) {
    throw new ConfigError(
      'factories',
      `Could not load the factories module ${modulePath}: ${(error as Error).message}. Fix the module or change "factories" in the config.`,
      {
        cause: error,
      },
    );
  }
  const exports = loaded as { factories?: unknown; default?: unknown };
  const factories = exports.factories ?? exports.default;
  if (typeof factories !== 'object' || factories === null) {
    throw new ConfigError(
      'factories',
      `The factories module ${modulePath} exports no factories; add \`export const factories = { project: Factory.define(...) }\` or a default export of that object.`,
    );
  }
  for (const [name, factory] of Object.entries(factories)) {
    if (!isFactory(factory)) {
      throw new ConfigError(
        'factories',
        `factories.${name} in ${modulePath} is not a fishery factory; define it with Factory.define(...).`,
      );
    }
  }
  return factories as UserFactories;
}

// Duck-typed: the user's project may load its own copy of fishery, so `instanceof Factory` would fail.
function isFactory(value: unknown): value is AnyFactory {
  const candidate = value as Partial<AnyFactory> | null;
  return (
    typeof candidate?.build === 'function' &&
    typeof candidate.onCreate === 'function' &&
    typeof candidate.params === 'function'
  );
}
