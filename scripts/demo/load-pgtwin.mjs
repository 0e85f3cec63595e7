import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '../..');

/** What the demo drives, each part under its own name (two modules may export the same name). */
const ENTRY = `
export * as api from './src/index.ts';
export * as server from './src/provider/start-server.ts';
export * as probe from './src/provider/probe-postgres.ts';
export * as pipeline from './src/pipeline/global-setup.ts';
export * as fixture from './fixtures/contentgen/index.ts';
`;

/**
 * Every module keeps its own `import.meta.url`, as when run from source: the fixture finds schema.sql beside
 * it, and pgtwin its package.json above it.
 */
const sourceUrls = {
  name: 'source-urls',
  setup(builder) {
    builder.onLoad({ filter: /\.ts$/ }, async (args) => ({
      contents: (await readFile(args.path, 'utf8')).replaceAll(
        'import.meta.url',
        JSON.stringify(pathToFileURL(args.path).href),
      ),
      loader: 'ts',
    }));
  },
};

/**
 * The parts of pgtwin the demo drives directly: the public API, and the server provider and global setup,
 * which are internal (the presets use them), with the contentgen fixture that builds the demo's production.
 * Bundled from source with esbuild, as tsup builds dist/ (about 0.4 s; loading the sources through jiti took
 * 3.4 s of CPU, even for a demo that then stops at a configuration error). The example suite, by contrast,
 * runs on the built package (`pgtwin/vitest`), as a user's suite does.
 */
export async function loadPgtwin() {
  // Inside the repository, so the bundle's imports of pg and the rest resolve to its node_modules; one file
  // per process, so two demos at once never read each other's half-written bundle.
  const dir = path.join(root, 'node_modules/.cache/pgtwin/demo-bundle');
  const outfile = path.join(dir, `pgtwin-${process.pid}.mjs`);
  await mkdir(dir, { recursive: true });
  try {
    await build({
      stdin: { contents: ENTRY, resolveDir: root, loader: 'ts', sourcefile: 'demo-entry.ts' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outfile,
      logLevel: 'silent',
      plugins: [sourceUrls],
    });
    const parts = await import(pathToFileURL(outfile).href);
    return { ...parts.api, ...parts.server, ...parts.probe, ...parts.pipeline, fixture: parts.fixture };
  } finally {
    await rm(outfile, { force: true });
  }
}
