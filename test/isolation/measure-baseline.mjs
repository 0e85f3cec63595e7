// Runs each conformance case in a process of its own against an isolation engine and prints which fail.
// One process per case, because pg-transactional-tests shares one connection per database: after one
// case breaks it (a hang, a closed client), every later case in the same run fails for that reason alone.
//
//   node test/isolation/measure-baseline.mjs pg-transactional-tests
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

const engine = process.argv[2] ?? 'pg-transactional-tests';
const kinds = ['pg Client', 'pg Pool', 'Knex', 'Kysely'];
/** A case is a describe block (tests that depend on each other) or one test. */
const cases = [
  'tests do not see each other’s data',
  'autocommit emulation > a failing statement (unique violation) does not poison the statements after it',
  'a first statement that writes through a SELECT',
  'concurrency > holds two connections at once without hanging',
  'concurrency > runs concurrent queries (Promise.all) without hanging',
  'concurrency > a test that holds every client of its pool and asks for one more fails fast, saying why',
  'application transactions nest inside the test transaction > commits an application transaction',
  'application transactions nest inside the test transaction > rolls back an application transaction',
  'application transactions nest inside the test transaction > rolls back a failed nested transaction (savepoint) alone',
  'application transactions nest inside the test transaction > an error inside an application transaction aborts it, as on the server',
  'application transactions nest inside the test transaction > accepts every spelling of transaction control',
  'application transactions nest inside the test transaction > application savepoints (SAVEPOINT, RELEASE, ROLLBACK TO) behave as on the server',
  'application transactions nest inside the test transaction > SAVEPOINT outside a transaction fails and COMMIT outside one is a no-op, as on the server',
  'application transactions nest inside the test transaction > checks deferred constraints at the application’s COMMIT',
  'a multi-statement string with BEGIN and COMMIT',
  'a failing test',
  'a timed-out test',
  'the application ending its pool',
  'session state does not reach the next test',
];

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const output = `/tmp/pgtwin-baseline-${process.pid}.json`;

for (const testCase of cases) {
  const outcomes = kinds.map((kind) => {
    const pattern = escape(`isolation through ${kind} ${testCase.replace(' > ', ' ')}`);
    rmSync(output, { force: true });
    spawnSync(
      'npx',
      [
        'vitest',
        'run',
        'test/isolation/conformance.test.ts',
        '-t',
        pattern,
        '--reporter=json',
        `--outputFile=${output}`,
      ],
      { env: { ...process.env, PGTWIN_ISOLATION_ENGINE: engine }, stdio: 'ignore', timeout: 120_000 },
    );
    try {
      const report = JSON.parse(readFileSync(output, 'utf8'));
      if (report.numTotalTests === report.numPendingTests) return 'n/a';
      const failed = report.testResults
        .flatMap((file) => file.assertionResults)
        .filter((test) => test.status === 'failed');
      return failed.length === 0
        ? 'pass'
        : `FAIL: ${failed[0].failureMessages[0].split('\n')[0].slice(0, 110)}`;
    } catch {
      return 'FAIL: no report (the run hung or crashed)';
    }
  });
  console.log(`${testCase}\n${kinds.map((kind, i) => `    ${kind}: ${outcomes[i]}`).join('\n')}`);
}
