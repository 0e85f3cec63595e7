import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedServer } from 'pgtwin';
import { CHILD_RUN_TIMEOUT_MS, CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';

const root = path.resolve(import.meta.dirname, '../..');
// Open to all: as root, the embedded server runs as the system user pgtwin, which must reach the data dir.
const parent = mkdtempSync(path.join(tmpdir(), 'pgtwin-demo-test-'));
chmodSync(parent, 0o755);
const dataDir = path.join(parent, 'data');

afterAll(async () => {
  await new EmbeddedServer({ dataDir }).remove();
  rmSync(parent, { recursive: true, force: true });
});

/** Runs `node scripts/demo.mjs` (dist/ is built by `npm test` first) with the configured server unreachable. */
function demo(
  settings: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(VITEST|TEST_|DB_|DATABASE_URL|PGTWIN_|JEST_)/.test(name))
      env[name] = value;
  }
  Object.assign(env, { DB_PORT: '1', TEST_DB_PORT: '1', PGTWIN_DEMO_DATA_DIR: dataDir, ...settings });
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['scripts/demo.mjs'],
      { cwd: root, env, timeout: CHILD_RUN_TIMEOUT_MS },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

function expectNothingRunning() {
  expect(existsSync(path.join(dataDir, 'pgdata/postmaster.pid'))).toBe(false);
  const state = JSON.parse(readFileSync(path.join(dataDir, 'pgtwin-embedded.json'), 'utf8')) as {
    running?: unknown;
  };
  expect(state.running).toBeUndefined();
}

describe('the demo (node scripts/demo.mjs)', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('builds production and the twin on embedded PostgreSQL, runs the example and proves the isolation, when the configured server does not answer', async () => {
    const run = await demo();
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.code, output).toBe(0);
    expect(run.stdout).toMatch(
      /^provider +embedded, always for the demo unless PGTWIN_PROVIDER says otherwise \(the configured server localhost:1 does not answer\)$/m,
    );
    expect(run.stdout).toMatch(/^server +PostgreSQL \d+\.\d+ at 127\.0\.0\.1:\d+, new cluster in /m);
    expect(run.stdout).toMatch(
      /^production +contentgen_db: \d+ tables, [\d,]+ rows from the contentgen fixture/m,
    );
    for (const phase of ['config', 'provision', 'clone', 'sync', 'seed', 'template'])
      expect(run.stdout).toMatch(new RegExp(`^ +${phase} +\\d+ ms`, 'm'));
    expect(run.stdout).toMatch(/^ +sync +\d+ ms {2}2 tables, \d+ rows; \d+ objects after the data$/m);
    expect(run.stdout).toMatch(
      /^ +seed +\d+ ms {2}3 rows from examples\/vitest-kysely\/seeds\/seed_data\.json$/m,
    );
    expect(run.stdout).toMatch(
      /^twin +\d+ tables cloned, \d+ rows mirrored \(.*identical to production\), 3 seed rows$/m,
    );

    const tests = /^tests +examples\/vitest-kysely: (\d+) passed, 0 failed \(/m.exec(run.stdout);
    expect(Number(tests?.[1])).toBeGreaterThan(0);
    expect(run.stdout).toContain(
      'isolation   "lets a test create a project" wrote; the next test did not see it',
    );
    expect(run.stdout).toMatch(
      /^isolation +contentgen_test_db rows: (\d+) before the tests, \1 after \(every table alike\); no copies left behind$/m,
    );
    expect(run.stdout).toMatch(/^production +unchanged: checksum [0-9a-f]{12} before and after/m);
    expect(run.stdout).toMatch(/^server +embedded PostgreSQL stopped$/m);
    expect(run.stdout).toMatch(/^result +demo passed in [\d.]+ s$/m);
    expect(run.stdout.trim().split('\n').length).toBeLessThanOrEqual(25);

    const { password } = JSON.parse(readFileSync(path.join(dataDir, 'pgtwin-embedded.json'), 'utf8')) as {
      password: string;
    };
    expect(output).not.toContain(password);
    expectNothingRunning();
  });

  it('runs again on the same cluster, rebuilding the demo databases', async () => {
    const run = await demo();
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^server +PostgreSQL .*, reused cluster in /m);
    expect(run.stdout).toMatch(/^ +provision +\d+ ms {2}.*created database/m);
    expect(run.stdout).toMatch(/^result +demo passed/m);
    expectNothingRunning();
  });

  it('stops with one line naming the setting, and a non-zero exit code, when the configuration is wrong', async () => {
    const run = await demo({ PGTWIN_PROVIDER: 'embeded' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'demo failed: PGTWIN_PROVIDER (from environment) must be one of auto, server, embedded, container, got "embeded".',
    );
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.stdout).toMatch(/^result +demo FAILED/m);
  });
});
