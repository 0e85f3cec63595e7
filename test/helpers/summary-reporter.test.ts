import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const config = path.join(import.meta.dirname, 'reporter-fixtures/vitest.config.ts');
const CLOSING_LINE = /^(\d+) passed, (\d+) failed, (\d+) skipped$/gm;

interface ChildRun {
  code: number | null;
  output: string;
  /** The last `N passed, N failed, N skipped` line, the one CI reads. */
  closingLine: string | undefined;
}

/** Runs Vitest on fixture files (`filter` and `more`) with the summary reporter, as CI runs the suite. */
function runFixture(
  filter: string,
  settings: Record<string, string> = {},
  more: string[] = [],
): Promise<ChildRun> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(VITEST|TEST$|NODE_ENV$|PGTWIN_)/.test(name)) env[name] = value;
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--config', config, filter, ...more],
      { cwd: root, env: { ...env, NO_COLOR: '1', ...settings }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const lines = [...stdout.matchAll(CLOSING_LINE)].map((match) => match[0]);
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
          output: `${stdout}\n${stderr}`,
          closingLine: lines.at(-1),
        });
      },
    );
  });
}

describe('the summary reporter’s closing line agrees with the exit code', { timeout: 150_000 }, () => {
  it('says 0 failed, with exit code 0, when every test passes', async () => {
    const run = await runFixture('passing.fixture.ts');
    expect(run.closingLine, run.output).toBe('1 passed, 0 failed, 0 skipped');
    expect(run.code).toBe(0);
  });

  // One child run of six files that each fail one way (a Vitest start is about 2.5 s of CPU each): the line
  // must add up every file's failures, and name each.
  let together: Promise<ChildRun> | undefined;
  const failingFiles = () =>
    (together ??= runFixture('after-all.fixture.ts', {}, [
      'after-all-timeout.fixture.ts',
      'before-all.fixture.ts',
      'unhandled-rejection.fixture.ts',
      'failing-test.fixture.ts',
      'load-error.fixture.ts',
    ]));

  it('adds up six files that each fail one way: a failing afterAll, one that times out, a failing beforeAll (its test skipped), an unhandled rejection, a failing test, a file that fails to load', async () => {
    const run = await failingFiles();
    // Passed: the tests beside the two afterAlls, the one that leaves a rejection, and failing-test's second.
    expect(run.closingLine, run.output).toBe('4 passed, 6 failed, 1 skipped');
    expect(run.code).toBe(1);
  });

  it('names a failing afterAll, and one that times out (the reported "321 passed, 0 failed" case)', async () => {
    const run = await failingFiles();
    expect(run.output).toContain(
      'failed afterAll hook in after-all.fixture.ts: dropping the database failed',
    );
    expect(run.output).toContain(
      'failed afterAll hook in after-all-timeout.fixture.ts: Hook timed out in 50ms',
    );
  });

  it('names a failing beforeAll, an unhandled rejection and a file that fails to load', async () => {
    const run = await failingFiles();
    expect(run.output).toContain(
      'failed beforeAll hook in before-all.fixture.ts > a suite whose setup fails: creating the database failed',
    );
    expect(run.output).toContain('unhandled rejection in unhandled-rejection.fixture.ts');
    expect(run.output).toContain('failed to load load-error.fixture.ts: this file cannot be loaded');
  });

  it('counts a run that found no test files', async () => {
    const run = await runFixture('no-such.fixture.ts');
    expect(run.closingLine, run.output).toBe('0 passed, 1 failed, 0 skipped');
    expect(run.code).toBe(1);
    expect(run.output).toContain('no test files ran');
  });

  it('corrects the line at exit when the run fails after it was printed (a global teardown’s rejection)', async () => {
    const run = await runFixture('passing.fixture.ts', { PGTWIN_FIXTURE_TEARDOWN_REJECTS: '1' });
    expect(run.closingLine, run.output).toBe('1 passed, 1 failed, 0 skipped');
    expect(run.code).toBe(1);
    expect(run.output).toContain('the run failed after the line above (exit code 1)');
  });
});
