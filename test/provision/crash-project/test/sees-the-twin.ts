import { writeSync } from 'node:fs';
import pg from 'pg';
import { expect, it } from 'vitest';

/**
 * The test each spec file runs (two files, so the run has two workers): the twin is seeded and mirrored; with
 * `CRASH_HOLD_TEST=1` it then waits, so the crash suite can kill the run while a test is running.
 */
export function seesTheTwin(file: string): void {
  it(`${file} file sees the seed and the mirrored rows`, async () => {
    const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ clients: number; prompts: number }>(
        'SELECT (SELECT count(*) FROM public.clients)::int AS clients, (SELECT count(*) FROM public.prompts)::int AS prompts',
      );
      expect(rows[0]!.clients).toBe(1);
      expect(rows[0]!.prompts).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
    // The crash suite kills the run here, while a test is running.
    if (process.env.CRASH_HOLD_TEST === '1') {
      writeSync(2, 'crash-test: test running\n');
      await new Promise(() => undefined);
    }
  });
}
