import path from 'node:path';
import { defineConfig } from 'vitest/config';
import SlowFirstSequencer from './test/helpers/slow-first-sequencer.js';

export default defineConfig({
  resolve: {
    // Tests import what users import; mapped to the source as fishery does.
    alias: [{ find: /^pgtwin$/, replacement: path.resolve('src/index.ts') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // A worker's files share one module graph: pgtwin's sources are loaded once per worker, not once per file
    // (Vitest's "import" time fell from 71 s to 29 s, the run from 279 s to 267 s). Files own their databases
    // and undo what they patch, so nothing else carries over.
    isolate: false,
    // Files wait on PostgreSQL and child processes, so one more file than cores; a fourth worker loads the
    // sources once more and only adds contention (2 cores, 2026-12-04: 288 s with three, 306 s with four,
    // 313 s with two).
    maxWorkers: 3,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    sequence: { sequencer: SlowFirstSequencer },
    // The CLI, preset, demo and package tests run dist/: rebuilt first when older than its sources.
    globalSetup: ['./scripts/fresh-dist.ts'],
  },
});
