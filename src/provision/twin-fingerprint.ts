import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedConfig } from '../config/resolve-config.js';

/**
 * What the caller reads from the servers for {@link computeFingerprint}. Provision sits below structure
 * and mirror, so the pipeline reads these and hands them in:
 *
 * ```ts
 * const sources = {
 *   structure: await structureFingerprint(production, selectionFromConfig(config)),
 *   data: await tableChecksums(production, config.mirror.full),
 *   serverVersion: (await admin.query('SHOW server_version_num')).rows[0].server_version_num,
 *   pgtwinVersion: pgtwinVersion(),
 * };
 * ```
 */
export interface FingerprintSources {
  /** `structureFingerprint` of production's selected schemas (or what stands for it: a dump's, `'scripts'`). */
  structure: string;
  /**
   * The mirrored tables' contents: `tableChecksums(production, config.mirror.full)` (exact; row order does not
   * matter), or any string per table that changes whenever a row does.
   */
  data: Readonly<Record<string, string | { rowCount: number; checksum: string }>>;
  /**
   * The test server's version: a template is only reused on the major version it was built by. Only the major
   * counts (`150004` and `150010` are both 15), so a minor upgrade keeps the templates.
   */
  serverVersion: string | number;
  /** pgtwin's own version; a new release rebuilds. */
  pgtwinVersion: string;
  /** Anything else the build depends on, e.g. sequence values of the mirrored tables. */
  extra?: Readonly<Record<string, string>>;
}

/** The digest of each input, for logging which one changed. */
export type FingerprintInputs = Record<string, string>;

/**
 * The part of the fingerprint read from this machine alone (no server): the configuration that shapes the
 * twin, and the files it is built from. Watch-mode re-runs compare its {@link LocalInputs.digest} to decide
 * whether to rebuild without reading production.
 */
export interface LocalInputs {
  /** One digest per input: `config`, `seeds`, `factories`, `scripts`, `dump`. */
  readonly digests: Readonly<FingerprintInputs>;
  /** sha256 (hex) over {@link digests}. */
  readonly digest: string;
  /** The input files that exist, absolute (seeds, factories and what they import, scripts, dump manifest). */
  readonly files: readonly string[];
}

/**
 * Reads the {@link LocalInputs}: what the test database will contain as far as this machine decides it.
 * Content-addressed: file contents and paths relative to the project, never where the test server listens,
 * what the test database is called, or a password. Only the test user counts, since it owns every object.
 *
 * @example
 * const { digest } = await readLocalInputs(config); // changes when a seed file or a factory helper does
 */
export async function readLocalInputs(config: ResolvedConfig): Promise<LocalInputs> {
  const relative = (file: string) => path.relative(config.rootDir, file).split(path.sep).join('/');
  const files: string[] = [];
  const digest = async (list: readonly string[]) => {
    const { digest, found } = await digestFiles(list, relative);
    files.push(...found);
    return digest;
  };
  const dump = config.source.dump;
  const digests: FingerprintInputs = {
    config: sha256(
      JSON.stringify({
        owner: config.test.user,
        mirror: {
          full: [...config.mirror.full].sort(),
          structureOnly: [...config.mirror.structureOnly].sort(),
        },
        projectSchemas: config.projectSchemas,
        seeds: config.seeds.map(relative),
        seedLimits: config.seedLimits,
        factories: config.factories === undefined ? null : relative(config.factories),
        scripts: config.schema.scripts === undefined ? null : relative(config.schema.scripts),
        dump: dump === undefined ? null : relative(dump),
      }),
    ),
    seeds: await digest(await seedFiles(config.seeds)),
    factories: config.factories === undefined ? 'none' : await digest(await moduleGraph(config.factories)),
    scripts:
      config.schema.scripts === undefined ? 'none' : await digest(await filesUnder(config.schema.scripts)),
    dump: dump === undefined ? 'none' : await digest([path.join(dump, 'manifest.json')]),
  };
  return { digests, digest: sha256(JSON.stringify(Object.entries(digests))), files };
}

/**
 * Hashes everything the test database is built from into a sha256 (64 hex): production's structure, the
 * mirrored data, the seed files, the factories module and the files it imports, the schema scripts, the
 * configuration that shapes the contents, the test server's major version and pgtwin's version. Equal
 * inputs give the same fingerprint on every machine, on any port and for any test database name; any
 * change to one gives another.
 *
 * @example
 * ```ts
 * const fingerprint = await computeFingerprint(config, sources);
 * templateName(fingerprint); // 'pgtwin_tpl_3f9a0c2b7d41'
 * ```
 */
export async function computeFingerprint(
  config: ResolvedConfig,
  sources: FingerprintSources,
): Promise<string> {
  return fingerprintOf(await fingerprintInputs(config, sources));
}

/** The digests {@link computeFingerprint} hashes, one per input; pass `local` when already read. */
export async function fingerprintInputs(
  config: ResolvedConfig,
  sources: FingerprintSources,
  local?: LocalInputs,
): Promise<FingerprintInputs> {
  const data = Object.keys(sources.data)
    .sort()
    .map((table) => {
      const value = sources.data[table]!;
      return [table, typeof value === 'string' ? value : `${value.rowCount}/${value.checksum}`];
    });
  const inputs: FingerprintInputs = {
    ...(local ?? (await readLocalInputs(config))).digests,
    structure: sources.structure,
    data: sha256(JSON.stringify(data)),
    server: String(Math.floor(Number(sources.serverVersion) / 10000)),
    pgtwin: sources.pgtwinVersion,
  };
  for (const [key, value] of Object.entries(sources.extra ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)))
    inputs[`extra.${key}`] = value;
  return inputs;
}

/** The fingerprint of digests from {@link fingerprintInputs}. */
export function fingerprintOf(inputs: FingerprintInputs): string {
  return sha256(JSON.stringify(Object.entries(inputs)));
}

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** One digest of the files' names (relative) and contents; a missing file counts as such, not as an error. */
async function digestFiles(
  files: readonly string[],
  relative: (file: string) => string,
): Promise<{ digest: string; found: string[] }> {
  const hash = createHash('sha256');
  const found: string[] = [];
  for (const file of files) {
    let content: string;
    try {
      content = sha256(await readFile(file));
      found.push(file);
    } catch {
      content = 'missing';
    }
    hash.update(`${relative(file)}\0${content}\0`);
  }
  return { digest: hash.digest('hex'), found };
}

/** Seed paths as the loader reads them: files as given, directories' files in name order. */
async function seedFiles(seeds: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const seed of seeds) files.push(...(await filesUnder(seed)));
  return files;
}

/**
 * Every file under `target` (or `target` itself when it is a file), sorted. Taking every file rather than
 * only `.json` or `.sql` ones errs on the safe side: an unrelated change rebuilds, never the reverse.
 */
async function filesUnder(target: string): Promise<string[]> {
  let info;
  try {
    info = await stat(target);
  } catch {
    return [target];
  }
  if (!info.isDirectory()) return [target];
  const entries = await readdir(target, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

const RELATIVE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)(['"])(\.{1,2}\/[^'"]+)\1/g;
const EXTENSIONS = ['', '.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json'];

/** The factories module and every file it reaches through relative imports: editing a helper rebuilds too. */
async function moduleGraph(entry: string): Promise<string[]> {
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    for (const match of text.matchAll(RELATIVE_IMPORT)) {
      const resolved = await resolveImport(path.dirname(file), match[2]!);
      if (resolved) pending.push(resolved);
    }
  }
  return [...seen].sort();
}

async function resolveImport(directory: string, specifier: string): Promise<string | undefined> {
  const base = path.resolve(directory, specifier);
  // TypeScript sources import './x.js' for './x.ts'.
  const stems = /\.[cm]?js$/.test(base) ? [base, base.replace(/\.([cm]?)js$/, '.$1ts')] : [base];
  for (const stem of stems) {
    for (const candidate of [
      ...EXTENSIONS.map((ext) => stem + ext),
      ...EXTENSIONS.slice(1).map((ext) => path.join(stem, `index${ext}`)),
    ]) {
      const info = await stat(candidate).catch(() => undefined);
      if (info?.isFile()) return candidate;
    }
  }
  return undefined;
}
