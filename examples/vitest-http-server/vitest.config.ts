import { defineConfig } from 'vitest/config';
import { pgtwin } from 'pgtwin/vitest';

// Production comes from DB_HOST / DB_PORT / DB_NAME / DB_USER / DB_PASS, the test database from TEST_DB_*.
export default defineConfig({
  plugins: [pgtwin({ seeds: 'seeds/seed_data.json' })],
  test: {
    include: ['test/**/*.test.ts'],
    // pgtwin's hooks open the test transaction; on a busy CI machine that can outlast Vitest's 10 s default.
    hookTimeout: 120_000,
    testTimeout: 60_000,
  },
});
