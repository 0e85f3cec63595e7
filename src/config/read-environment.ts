import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'dotenv';
import { ConfigError } from '../errors.js';

/** A value read from the environment and where it came from (`env` or a `.env` file's path). */
export interface EnvValue {
  value: string;
  source: string;
}

/** Looks a variable up: the real environment first, then each `.env` file in order. Empty values count as unset. */
export type EnvLookup = (name: string) => EnvValue | undefined;

/**
 * Reads the real environment and the `.env` files below it, without touching `process.env`.
 * Files named explicitly must exist; the default `.env` may be absent.
 */
export function readEnvironment(options: {
  rootDir: string;
  env: Record<string, string | undefined>;
  envFiles: readonly string[];
  explicitFiles: boolean;
}): EnvLookup {
  const layers: { source: string; values: Record<string, string | undefined> }[] = [
    { source: 'environment', values: options.env },
  ];
  for (const file of options.envFiles) {
    const full = path.resolve(options.rootDir, file);
    if (!existsSync(full)) {
      if (options.explicitFiles) {
        throw new ConfigError(
          'envFiles',
          `The env file ${full} does not exist. Create it or remove it from envFiles.`,
        );
      }
      continue;
    }
    layers.push({ source: path.relative(options.rootDir, full) || full, values: parse(readFileSync(full)) });
  }
  return (name) => {
    for (const layer of layers) {
      const value = layer.values[name];
      if (value !== undefined && value !== '') return { value, source: layer.source };
    }
    return undefined;
  };
}
