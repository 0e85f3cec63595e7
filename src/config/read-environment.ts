import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'dotenv';
import { ConfigError } from '../errors.js';

/** A value read from the environment and where it came from (`env` or a `.env` file's path). */
export interface EnvValue {
  value: string;
  source: string;
}

/** One layer of the environment: the real environment, or one `.env` file. */
export interface EnvLayer {
  /** `environment`, or the `.env` file's path relative to the root. */
  source: string;
  /** The variable's value in this layer alone; empty values count as unset. */
  get(name: string): string | undefined;
  /** The names this layer sets (with a value). */
  names(): string[];
}

/**
 * Looks a variable up: the real environment first, then each `.env` file in order. Empty values count as unset.
 * `layers` lists the same layers, highest first, for values that must be resolved layer by layer (a target's
 * URL and its fields).
 */
export interface EnvLookup {
  (name: string): EnvValue | undefined;
  readonly layers: readonly EnvLayer[];
}

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
          `The env file ${full} does not exist. Create it, or fix the path given to --env-file (or envFiles).`,
        );
      }
      continue;
    }
    layers.push({ source: path.relative(options.rootDir, full) || full, values: parse(readFileSync(full)) });
  }
  const envLayers: EnvLayer[] = layers.map(({ source, values }) => ({
    source,
    get: (name) => (values[name] === '' ? undefined : values[name]),
    names: () => Object.keys(values).filter((name) => values[name] !== undefined && values[name] !== ''),
  }));
  const lookup = (name: string): EnvValue | undefined => {
    for (const layer of envLayers) {
      const value = layer.get(name);
      if (value !== undefined) return { value, source: layer.source };
    }
    return undefined;
  };
  return Object.assign(lookup, { layers: envLayers });
}
