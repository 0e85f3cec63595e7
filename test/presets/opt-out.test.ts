import { describe, expect, it } from 'vitest';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { databasesNamed, exampleDatabases, JEST_BIN, runnerEnv, runRunner } from './example-run.js';

const databases = await exampleDatabases('oo');
const PROJECT = 'test/presets/opt-out-project';
const env = () =>
  runnerEnv({ DB_NAME: databases.production, TEST_DB_NAME: databases.test, TEST_DB_USER: databases.user });
/** Vitest on the project's spec files matching `filter`, with one worker. */
const vitest = (filter: string) =>
  runRunner(
    [
      process.env.PGTWIN_E2E_VITEST ?? 'node_modules/vitest/vitest.mjs',
      'run',
      '--root',
      PROJECT,
      '--reporter=json',
      '--maxWorkers=1',
      filter,
    ],
    env(),
  );

describe('pgtwin.isolation(false) for one test', { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('under Vitest: real connections on a fresh copy, the next test isolated, a ready copy taken, nothing left', async () => {
    const run = await vitest('per-test');
    expect(run.tests, run.output).toEqual({
      'gives one test a real database: its own backends, NOTIFY, blocking row locks and now() advancing':
        'passed',
      'runs the next test isolated again, on the worker database, without the rows the opted-out test committed':
        'passed',
      'takes a copy made before the test started, and commits there only from the call on': 'passed',
    });
    expect(run.code).toBe(0);
    // The opted-out tests' copies and the pool's ready copy are dropped by the end of the run.
    expect(await databasesNamed(`${databases.test}_`)).toEqual([]);
  });

  it('under Jest: a test awaits it and commits on a copy, the next test is isolated, nothing left', async () => {
    const run = await runRunner(
      [JEST_BIN, '--config', `${PROJECT}/jest.config.cjs`, '--json', '--maxWorkers=1'],
      env(),
    );
    expect(run.tests, run.output).toEqual({
      'gives one test a real database under Jest: NOTIFY between connections, commits': 'passed',
      'runs the next Jest test isolated again, without the rows the opted-out test committed': 'passed',
    });
    expect(run.code).toBe(0);
    expect(await databasesNamed(`${databases.test}_`)).toEqual([]);
  });

  it('under Vitest: a worker killed in an opted-out test leaves neither its copy nor the ready one', async () => {
    const run = await vitest('killed-worker');
    expect(run.code, run.output).not.toBe(0);
    // Still running when its worker died: neither passed nor failed.
    expect(run.tests, run.output).toEqual({
      'is killed with its copy in use and a ready copy made': 'pending',
    });
    // The global teardown dropped the run's copies.
    expect(await databasesNamed(`${databases.test}_`)).toEqual([]);
  });
});
