import { defineConfig } from 'vitest/config';
import { pgtwin } from 'pgtwin/vitest';

// The small project the crash suite (crash-suite.ts) runs and kills. Its tests end in .spec.ts, so the suite's own
// include (test/**/*.test.ts) never picks them up.
export default defineConfig({
  plugins: [pgtwin({ seeds: 'seeds/seed_data.json' })],
  test: { include: ['test/**/*.spec.ts'], testTimeout: 600_000 },
});
