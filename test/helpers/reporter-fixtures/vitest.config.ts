import path from 'node:path';
import { defineConfig } from 'vitest/config';

// Child runs of test/helpers/summary-reporter.test.ts: each names one *.fixture.ts file (the suite's own
// include, test/**/*.test.ts, never picks these up).
export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['*.fixture.ts'],
    reporters: ['default', path.resolve(import.meta.dirname, '../summary-reporter.ts')],
    globalSetup: process.env.PGTWIN_FIXTURE_TEARDOWN_REJECTS ? ['./rejecting-teardown.ts'] : [],
  },
});
