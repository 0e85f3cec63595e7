import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedConfig } from '../config/resolve-config.js';

/** What the twin was built from, cheap to recompute: re-runs in watch mode rebuild only when it changes. */
export interface SetupInputs {
  /** sha256 (hex) over the configuration and the content of every input file. */
  readonly digest: string;
  /** The input files read, absolute (seeds, factories, schema scripts, dump manifest). */
  readonly files: readonly string[];
}

/**
 * Hashes the configuration (passwords excluded) and the files the build reads. Production itself is not
 * read: its changes are picked up by a new run, not by a watch re-run.
 */
export async function readSetupInputs(
  config: ResolvedConfig,
  dump: string | undefined,
): Promise<SetupInputs> {
  const hash = createHash('sha256');
  const { production, test, mirror, projectSchemas, schema, seeds, factories } = config;
  hash.update(JSON.stringify({ production, test, mirror, projectSchemas, schema, seeds, factories, dump }));
  const candidates = [
    ...seeds,
    ...(factories ? [factories] : []),
    ...(schema.scripts ? [schema.scripts] : []),
    ...(dump ? [path.join(dump, 'manifest.json')] : []),
  ];
  const files: string[] = [];
  for (const file of await expand(candidates)) {
    const content = await readFile(file).catch(() => undefined);
    hash.update(`${file}\0${content === undefined ? 'missing' : content.length}\0`);
    if (content !== undefined) {
      hash.update(content);
      files.push(file);
    }
  }
  return { digest: hash.digest('hex'), files };
}

async function expand(entries: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const entry of entries) {
    const info = await stat(entry).catch(() => undefined);
    if (!info?.isDirectory()) {
      files.push(entry);
      continue;
    }
    const names = (await readdir(entry)).sort();
    files.push(...(await expand(names.map((name) => path.join(entry, name)))));
  }
  return files;
}
