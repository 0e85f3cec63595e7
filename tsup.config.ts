import { defineConfig } from 'tsup';

export default defineConfig({
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
    // The `pgtwin` command; esbuild keeps bin.ts's `#!/usr/bin/env node` line and tsup marks the file executable.
    cli: 'src/cli/bin.ts',
  },
  format: ['esm', 'cjs'],
  // A dev dependency here, so tsup would bundle it; the presets must use the user's own Vitest.
  external: ['vitest', /^vitest\//],
  // Declarations come from tsc (`npm run build`, scripts/place-types.mjs): the program that type-checks the project.
  dts: false,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // import.meta.url is used to locate package files; tsup rewrites it for the CommonJS build.
  shims: true,
});
