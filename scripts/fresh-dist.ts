import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** The repository root, from this file's place in scripts/. */
const REPO_ROOT = path.resolve(import.meta.dirname, '..');
/** What `npm run build` builds dist/ from. */
const INPUTS = [
  'src',
  'presets',
  'tsup.config.ts',
  'tsconfig.json',
  'package.json',
  'scripts/place-types.mjs',
];
/** Outputs every dist-dependent test needs: the CLI, the root entry, both presets in both formats, the declarations. */
const OUTPUTS = [
  'dist/cli.js',
  'dist/index.js',
  'dist/index.cjs',
  'dist/vitest/index.js',
  'dist/jest/setup.cjs',
  'dist/types/src/index.d.ts',
  'dist/types-cjs/src/index.d.ts',
];

/**
 * Vitest global setup: the CLI, preset, demo and package tests run the built dist/, so a dist/ older than
 * its sources would test yesterday's code and pass. Builds it (`npm run build`) once, before any test file,
 * when an output is missing or a source file is newer; `npm test` has just built it, so there it only checks.
 */
export default function freshDist(): void {
  ensureFreshDist(REPO_ROOT);
}

/**
 * Builds dist/ of the repository at `root` when it is missing or older than its sources; the bench passes
 * its own root, since a bundle of this file no longer sits in scripts/.
 */
export function ensureFreshDist(root: string): void {
  const stale = staleReason(root);
  if (stale === undefined) return;
  process.stdout.write(`fresh-dist: ${stale}; building it (npm run build)\n`);
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) {
    const output = `${build.stdout ?? ''}${build.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(
      `dist/ is stale (${stale}) and npm run build failed (${build.error?.message ?? `exit code ${build.status}`}); ` +
        `the CLI, preset, demo and package tests would run old code. Its output:\n${output}`,
    );
  }
  const after = staleReason(root);
  if (after !== undefined) throw new Error(`npm run build succeeded, yet dist/ is still stale: ${after}.`);
}

/** Why dist/ cannot be trusted, or undefined when every output is newer than every input. */
export function staleReason(root: string = REPO_ROOT): string | undefined {
  let oldestOutput = Infinity;
  for (const output of OUTPUTS) {
    const file = path.join(root, output);
    if (!existsSync(file)) return `${output} is missing`;
    oldestOutput = Math.min(oldestOutput, statSync(file).mtimeMs);
  }
  for (const input of INPUTS) {
    const newer = firstNewerFile(path.join(root, input), oldestOutput);
    if (newer !== undefined) return `${path.relative(root, newer)} changed after dist/ was built`;
  }
  return undefined;
}

function firstNewerFile(file: string, than: number): string | undefined {
  const stat = statSync(file, { throwIfNoEntry: false });
  if (stat === undefined) return undefined;
  if (!stat.isDirectory()) return stat.mtimeMs > than ? file : undefined;
  for (const entry of readdirSync(file)) {
    const newer = firstNewerFile(path.join(file, entry), than);
    if (newer !== undefined) return newer;
  }
  return undefined;
}
