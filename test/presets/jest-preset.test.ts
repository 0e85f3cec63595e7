import { describe, expect, it } from 'vitest';
import { closedPort } from '../helpers/closed-port.js';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { exampleDatabases, JEST_BIN, productionState, runnerEnv, runRunner } from './example-run.js';

const databases = await exampleDatabases('jp');
const jest = (env: Record<string, string>, options: { maxWorkers?: number } = {}) =>
  runRunner(
    [
      JEST_BIN,
      '--config',
      'examples/jest-knex/jest.config.cjs',
      '--json',
      ...(options.maxWorkers ? [`--maxWorkers=${options.maxWorkers}`] : []),
    ],
    runnerEnv(env),
  );

describe("preset: 'pgtwin' on examples/jest-knex", { timeout: CHILD_TEST_TIMEOUT_MS }, () => {
  it('builds the twin in global setup and runs every test isolated, except the describe that opts out', async () => {
    const run = await jest({
      DB_NAME: databases.production,
      TEST_DB_NAME: databases.test,
      TEST_DB_USER: databases.user,
    });
    expect(run.tests, run.output).toEqual({
      'has the mirrored object models and prompts': 'passed',
      'holds only the seed data in structure-only tables': 'passed',
      'lets a test create a project': 'passed',
      'rolls that project back before the next test': 'passed',
      'creates rows with a factory inside a test': 'passed',
      'runs on its own copy of the test database': 'passed',
      'commits a project': 'passed',
      'still sees the committed project in the next test': 'passed',
    });
    expect(run.code).toBe(0);
    expect(run.output).toMatch(/\[pgtwin\] sync \d+ ms \(2 tables, \d+ rows; \d+ objects after the data\)/);
    expect(run.output).toMatch(/\[pgtwin\] template \d+ ms \(pgtwin_tpl_[0-9a-f]{12} built\)/);
    expect(run.output).not.toContain('twin-secret-9');
  });

  it('gives each of two Jest workers its own copy of the twin', async () => {
    const run = await jest(
      { DB_NAME: databases.production, TEST_DB_NAME: databases.test, TEST_DB_USER: databases.user },
      { maxWorkers: 2 },
    );
    expect(run.code, run.output).toBe(0);
    expect(Object.values(run.tests)).toHaveLength(8);
    expect(
      Object.values(run.tests).every((status) => status === 'passed'),
      run.output,
    ).toBe(true);
    // Both files ran at once, one committing, the other checking it sees only the seed: on separate copies.
    expect(run.output).toContain(`[pgtwin] workers`);
    expect(run.output).toContain(`${databases.test}_w1, ${databases.test}_w2`);
  });

  it('stops in the provision phase, naming host, port and setting, when production does not answer', async () => {
    const port = await closedPort();
    const run = await jest({
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
    expect(run.output).not.toMatch(/^\s+at /m);
  });

  it('refuses, before writing anything, a test database that is production reached as localhost', async () => {
    const before = await productionState(databases.production, databases.refusedUser);
    const run = await jest({
      DB_HOST: '127.0.0.1',
      DB_NAME: databases.production,
      TEST_DB_HOST: 'localhost',
      TEST_DB_NAME: databases.production,
      TEST_DB_USER: databases.refusedUser,
    });
    expect(run.code).not.toBe(0);
    expect(run.output).toContain(`pgtwin setup failed in phase "provision": Refused to provision`);
    expect(run.output).toContain('it is the production database');
    expect(await productionState(databases.production, databases.refusedUser)).toEqual(before);
    expect(before).toMatchObject({ comment: null, role: false });
  });
});

describe(
  'wire clients under the Jest preset (test/presets/jest-wire-clients)',
  { timeout: CHILD_TEST_TIMEOUT_MS },
  () => {
    it('isolates postgres.js and a child-process pg client through TEST_DATABASE_URL, beside in-process pg', async () => {
      const run = await runRunner(
        [JEST_BIN, '--config', 'test/presets/jest-wire-clients/jest.config.cjs', '--json'],
        runnerEnv({
          DB_NAME: databases.production,
          TEST_DB_NAME: databases.test,
          TEST_DB_USER: databases.user,
        }),
      );
      expect(run.tests, run.output).toEqual({
        'shares one test transaction between postgres.js and a pg client in a child process': 'passed',
        'finds the rows of both gone in the next test': 'passed',
        'shows postgres.js a row written through in-process pg in the same test': 'passed',
        'keeps the test usable after a postgres.js statement fails': 'passed',
      });
      expect(run.code).toBe(0);
    });
  },
);
