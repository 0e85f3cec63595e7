// The last step of `npm run build`: puts the declarations tsc emitted for the whole project (the same program
// that type-checks it, so no second one is needed for the package's types) into dist/, src/ and presets/ only,
// twice: dist/types/ for `import` and dist/types-cjs/ for `require`. TypeScript reads a .d.ts as ESM or
// CommonJS by the nearest package.json, as Node reads .js, so the second copy gets one saying "commonjs".
import { cpSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const emitted = path.join(root, 'node_modules', '.cache', 'pgtwin', 'declarations');

for (const [dir, type] of [
  ['types', undefined],
  ['types-cjs', 'commonjs'],
]) {
  const target = path.join(root, 'dist', dir);
  rmSync(target, { recursive: true, force: true });
  for (const part of ['src', 'presets']) {
    const from = path.join(emitted, part);
    if (!existsSync(from)) {
      console.error(
        `place-types: no declarations in ${from}; run tsc with --declarationDir ${emitted} first`,
      );
      process.exit(1);
    }
    cpSync(from, path.join(target, part), { recursive: true });
  }
  if (type) writeFileSync(path.join(target, 'package.json'), `${JSON.stringify({ type }, null, 2)}\n`);
}
