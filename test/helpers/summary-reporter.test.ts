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

/** Runs Vitest on one fixture file with the summary reporter, as CI runs the suite. */
function runFixture(filter: string, settings: Record<string, string> = {}): Promise<ChildRun> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(VITEST|TEST$|NODE_ENV$|PGTWIN_)/.test(name)) env[name] = value;
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--config', config, filter],
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

  it('counts a failing afterAll as one failure beside the test that passed', async () => {
    const run = await runFixture('after-all.fixture.ts');
    expect(run.closingLine, run.output).toBe('1 passed, 1 failed, 0 skipped');
    expect(run.code).toBe(1);
    expect(run.output).toContain(
      'failed afterAll hook in after-all.fixture.ts: dropping the database failed',
    );
  });

  it('counts an afterAll that times out, the reported "321 passed, 0 failed" case', async () => {
    const run = await runFixture('after-all-timeout.fixture.ts');
    expect(run.closingLine, run.output).toBe('1 passed, 1 failed, 0 skipped');
    expect(run.code).toBe(1);
    expect(run.output).toContain(
      'failed afterAll hook in after-all-timeout.fixture.ts: Hook timed out in 50ms',
    );
  });

  it('counts a failing beforeAll as one failure, and the test it kept from running as skipped', async () => {
    const run = await runFixture('before-all.fixture.ts');
    expect(run.closingLine, run.output).toBe('0 passed, 1 failed, 1 skipped');
    expect(run.code).toBe(1);
    expect(run.output).toContain(
      'failed beforeAll hook in before-all.fixture.ts > a suite whose setup fails: creating the database failed',
    );
  });

  it('counts an unhandled rejection in a test that passed', async () => {
    const run = await runFixture('unhandled-rejection.fixture.ts');
    expect(run.closingLine, run.output).toBe('1 passed, 1 failed, 0 skipped');
    expect(run.code).toBe(1);
    expect(run.output).toContain('unhandled rejection in unhandled-rejection.fixture.ts');
  });

  it('counts a failing test', async () => {
    const run = await runFixture('failing-test.fixture.ts');
    expect(run.closingLine, run.output).toBe('1 passed, 1 failed, 0 skipped');
    expect(run.code).toBe(1);
  });

  it('counts a file that fails to load', async () => {
    const run = await runFixture('load-error.fixture.ts');
    expect(run.closingLine, run.output).toBe('0 passed, 1 failed, 0 skipped');
    expect(run.code).toBe(1);
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
