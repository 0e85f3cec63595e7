import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedServer } from '../../src/provider/embedded-server.js';
import { closedPort } from '../helpers/closed-port.js';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { databasesNamed, exampleDatabases, runnerEnv, runRunner } from './example-run.js';

const databases = await exampleDatabases('vp');
const vitest = (env: Record<string, string>, args: string[] = [], root = 'examples/vitest-kysely') =>
  runRunner(
    [
      process.env.PGTWIN_E2E_VITEST ?? 'node_modules/vitest/vitest.mjs',
      'run',
      '--root',
      root,
      '--reporter=json',
      ...args,
    ],
    runnerEnv(env),
  );
const twinEnv = () => ({
  DB_NAME: databases.production,
  TEST_DB_NAME: databases.test,
  TEST_DB_USER: databases.user,
});

/** The test of worker-database.test.ts, whose title names its worker and that worker's database. */
function workerTests(tests: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tests).filter(([title]) => title.startsWith('runs worker ')));
}

describe('the Vitest plugin on examples/vitest-kysely', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('passes the same suite on an embedded PostgreSQL it starts and stops itself', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'pgtwin-e2e-embedded-'));
    try {
      const run = await vitest(
        { ...twinEnv(), PGTWIN_PROVIDER: 'embedded', PGTWIN_EMBEDDED_DATA_DIR: dataDir },
        ['--maxWorkers=1'],
      );
      expect(run.code, run.output).toBe(0);
      expect(run.output).toMatch(/\[pgtwin\] provider embedded: /);
      expect(Object.keys(run.tests)).toHaveLength(12);
      expect(Object.entries(run.tests).filter(([, status]) => status !== 'passed')).toEqual([]);
      // Stopped in teardown: a cleanly shut down server removes its pid file.
      expect(existsSync(path.join(dataDir, 'pgdata', 'postmaster.pid'))).toBe(false);
    } finally {
      // As root the cluster lives outside the data directory, in pgtwin's shared cache: removed with it.
      await new EmbeddedServer({ dataDir }).remove();
    }
  });

  it('builds the twin once and runs every test isolated, except the file that opts out', async () => {
    const run = await vitest(twinEnv(), ['--maxWorkers=1']);
    expect(run.tests, run.output).toEqual({
      'has the mirrored object models and prompts': 'passed',
      'holds only the seed data in structure-only tables': 'passed',
      'lets a test create a project': 'passed',
      'rolls that project back before the next test': 'passed',
      'creates rows with a factory inside a test': 'passed',
      'injects the connection details without printing the password': 'passed',
      'runs on its own copy of the test database': 'passed',
      'commits a project': 'passed',
      'still sees the committed project in the next test': 'passed',
      'hands a test a db connection inside its transaction': 'passed',
      'does not see what the previous test wrote through db': 'passed',
      [`runs worker 1 on ${databases.test}`]: 'passed',
    });
    expect(run.code).toBe(0);
    expect(run.output).toMatch(/\[pgtwin\] clone \d+ ms \(\d+ objects\)/);
    expect(run.output).toMatch(/\[pgtwin\] seed \d+ ms \(3 rows from seeds\/seed_data\.json\)/);
    expect(run.output).toMatch(/\[pgtwin\] template \d+ ms \(pgtwin_tpl_[0-9a-f]{12} built\)/);
    expect(run.output).not.toContain('twin-secret-9');
  });

  it('reuses the template on the next run, and gives each of two workers its own database', async () => {
    const run = await vitest(twinEnv(), ['--maxWorkers=2']);
    expect(run.code, run.output).toBe(0);
    expect(Object.values(run.tests).every((status) => status === 'passed')).toBe(true);
    expect(Object.keys(run.tests)).toHaveLength(12);
    expect(run.output).toMatch(
      /\[pgtwin\] template pgtwin_tpl_[0-9a-f]{12} reused \(fingerprint unchanged\)(, \w+ kept \(left clean\))? \d+ ms/,
    );
    expect(run.output).not.toMatch(/\[pgtwin\] (clone|sync|seed) \d+ ms/);
    const [w1, w2] = [`${databases.test}_w1`, `${databases.test}_w2`];
    expect(run.output).toMatch(new RegExp(`\\[pgtwin\\] workers \\d+ ms \\(${w1}, ${w2}\\)`));
    // The worker that ran the file reports its own database, not the shared one.
    const [title] = Object.keys(workerTests(run.tests));
    expect(title).toMatch(new RegExp(`^runs worker ([12]) on ${databases.test}_w\\1$`));
    // Dropped at teardown.
    expect(await databasesNamed(`${databases.test}_w`)).toEqual([]);
  });

  it('builds the template again with PGTWIN_REBUILD=1', async () => {
    const run = await vitest({ ...twinEnv(), PGTWIN_REBUILD: '1' }, ['--maxWorkers=1', 'worker-database']);
    expect(run.code, run.output).toBe(0);
    expect(workerTests(run.tests)).toEqual({ [`runs worker 1 on ${databases.test}`]: 'passed' });
    expect(run.output).toMatch(/\[pgtwin\] clone \d+ ms/);
    expect(run.output).toMatch(
      /\[pgtwin\] template \d+ ms \(pgtwin_tpl_[0-9a-f]{12} built \(PGTWIN_REBUILD\)\)/,
    );
  });

  it('stops in the provision phase, naming host, port and setting, when production does not answer', async () => {
    const port = await closedPort();
    const run = await vitest({
      DB_HOST: '127.0.0.1',
      DB_PORT: String(port),
      DB_NAME: databases.production,
      TEST_DB_NAME: databases.test,
      TEST_DB_USER: databases.user,
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toContain(
      `pgtwin setup failed in phase "provision": Cannot connect to the production database ${databases.production} at 127.0.0.1:${port}`,
    );
    expect(run.output).toContain('change DB_HOST / DB_PORT');
    expect(run.output).not.toMatch(/^\s+at |❯ .*\.ts:\d+/m);
    // Vitest 4 said "No test files found" ahead of any global setup error; the setup error is what failed.
    expect(run.output).not.toContain('No test files found');
  });
});

describe('the Vitest plugin on examples/vitest-http-server', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('isolates an API server the tests start in a child process, through the wire endpoint', async () => {
    const run = await vitest(twinEnv(), ['--maxWorkers=2'], 'examples/vitest-http-server');
    expect(run.tests, run.output).toEqual({
      'creates a project through the API': 'passed',
      'sees a row the test wrote itself': 'passed',
      'rolls both back before the next test': 'passed',
    });
    expect(run.code).toBe(0);
  });
});
