import { pathToFileURL } from 'node:url';
import { bundleSource } from '../bundle-source.mjs';

/** What the demo drives, each part under its own name (two modules may export the same name). */
const ENTRY = `
export * as api from './src/index.ts';
export * as server from './src/provider/start-server.ts';
export * as probe from './src/provider/probe-postgres.ts';
export * as pipeline from './src/pipeline/global-setup.ts';
export * as fixture from './fixtures/contentgen/index.ts';
`;

/**
 * The parts of pgtwin the demo drives directly: the public API, and the server provider and global setup,
 * which are internal (the presets use them), with the contentgen fixture that builds the demo's production,
 * bundled from source (so even a demo that stops at a configuration error starts at once). The example suite,
 * by contrast, runs on the built package (`pgtwin/vitest`), as a user's suite does.
 */
export async function loadPgtwin() {
  const parts = await import(pathToFileURL(await bundleSource({ contents: ENTRY, name: 'demo.mjs' })).href);
  return { ...parts.api, ...parts.server, ...parts.probe, ...parts.pipeline, fixture: parts.fixture };
}
