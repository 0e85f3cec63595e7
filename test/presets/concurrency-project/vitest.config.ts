import { defineConfig } from 'vitest/config';
import { pgtwin } from 'pgtwin/vitest';

// The small project concurrency.test.ts runs through the real Vitest. Its tests end in .spec.ts, so the
// suite's own include (test/**/*.test.ts) never picks them up.
export default defineConfig({
  plugins: [pgtwin({ seeds: 'seeds/seed_data.json' })],
  test: { include: ['test/**/*.spec.ts'], hookTimeout: 120_000, testTimeout: 60_000 },
});
