import { defineConfig } from 'vitest/config';
import { pgtwin } from 'pgtwin/vitest';

// The project opt-out.test.ts runs with Vitest and Jest. Its tests end in .spec.ts / .spec.cjs, so the suite's
// own include (test/**/*.test.ts) never picks them up.
export default defineConfig({
  plugins: [pgtwin({ seeds: 'seeds/seed_data.json' })],
  test: { include: ['test/**/*.spec.ts'], hookTimeout: 120_000, testTimeout: 120_000 },
});
