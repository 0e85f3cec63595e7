import { describe, expect, it } from 'vitest';
import { adminQuery, databaseUrl } from '../helpers/databases.js';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { exampleDatabases, JEST_BIN, runnerEnv, runRunner } from './example-run.js';

const PROJECT = 'test/presets/concurrency-project';
const databases = await exampleDatabases('cc');
const env = () =>
  runnerEnv({ DB_NAME: databases.production, TEST_DB_NAME: databases.test, TEST_DB_USER: databases.user });
/** The clients committed in the test database (a run with one worker uses it directly, and keeps it). */
const committedClients = async () =>
  (
    await adminQuery<{ slug: string }>(
      'SELECT slug FROM public.clients ORDER BY slug',
      [],
      databaseUrl(databases.test),
    )
  ).rows.map((row) => row.slug);

describe(
  'tests run through the real runners on test/presets/concurrency-project',
  { timeout: CHILD_TEST_TIMEOUT_MS },
  () => {
    it('Vitest: concurrent tests each see only their own row, statements outside tests commit', async () => {
      const run = await runRunner(
        ['node_modules/vitest/vitest.mjs', 'run', '--root', PROJECT, '--reporter=json', '--maxWorkers=1'],
        env(),
      );
      expect(run.tests, run.output).toEqual({
        "sees its own row (alpha) and not its siblings'": 'passed',
        "sees its own row (beta) and not its siblings'": 'passed',
        "sees its own row (gamma) and not its siblings'": 'passed',
        'finds nothing of the concurrent tests afterwards': 'passed',
        'writes inside the test through the pool connected at import': 'passed',
        'still sees what was written outside tests, and not what the first test wrote': 'passed',
      });
      expect(run.code).toBe(0);
      expect(run.output).not.toContain('pgtwin internal error');
      // What was written outside tests is committed; nothing any test wrote is.
      expect(await committedClients()).toEqual(['acme', 'before-all', 'module-load']);
    });

    it('Jest: test.concurrent neither crashes nor leaks', async () => {
      const run = await runRunner([JEST_BIN, '--config', `${PROJECT}/jest.config.cjs`, '--json'], env());
      expect(run.tests, run.output).toEqual({
        'writes alpha and sees it': 'passed',
        'writes beta and sees it': 'passed',
        'writes gamma and sees it': 'passed',
        'finds nothing the concurrent tests wrote afterwards': 'passed',
      });
      expect(run.code).toBe(0);
      expect(await committedClients()).toEqual(['acme']);
    });
  },
);
