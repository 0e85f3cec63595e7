import { describe, expect, it } from 'vitest';
import { closedPort, exampleDatabases, runnerEnv, runRunner } from './example-run.js';

const databases = await exampleDatabases('vp');
const vitest = (env: Record<string, string>) =>
  runRunner(
    ['node_modules/vitest/vitest.mjs', 'run', '--root', 'examples/vitest-kysely', '--reporter=json'],
    runnerEnv(env),
  );

describe('the Vitest plugin on examples/vitest-kysely', () => {
  it('builds the twin once and runs every test isolated, except the file that opts out', async () => {
    const run = await vitest({
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
      'injects the connection details without printing the password': 'passed',
      'runs on its own copy of the test database': 'passed',
      'commits a project': 'passed',
      'still sees the committed project in the next test': 'passed',
      'hands a test a db connection inside its transaction': 'passed',
      'does not see what the previous test wrote through db': 'passed',
    });
    expect(run.code).toBe(0);
    expect(run.output).toMatch(/\[pgtwin\] clone \d+ ms \(\d+ objects\)/);
    expect(run.output).toMatch(/\[pgtwin\] seed \d+ ms \(3 rows from seeds\/seed_data\.json\)/);
    expect(run.output).not.toContain('twin-secret-9');
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
  });
});
