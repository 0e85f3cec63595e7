import { defineConfig } from 'vitest/config';
import { pgtwin } from 'pgtwin/vitest';

// Production comes from DB_HOST / DB_PORT / DB_NAME / DB_USER / DB_PASS, the test database from TEST_DB_*.
export default defineConfig({
  plugins: [pgtwin({ seeds: 'seeds/seed_data.json' })],
  test: { include: ['test/**/*.test.ts'] },
});
