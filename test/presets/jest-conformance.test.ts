/**
 * The isolation conformance cases under Jest: runs test/presets/jest-conformance (the cases of
 * test/isolation/conformance-cases.ts with `preset: 'pgtwin'`) with the real Jest runner, and checks that
 * every case passed through every client kind.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, useScratch } from '../helpers/databases.js';
import { CHILD_TEST_TIMEOUT_MS } from '../helpers/timeouts.js';
import { CLIENT_KINDS } from '../isolation/client-kinds.js';
import {
  CONFORMANCE_SCHEMA,
  defineConformanceCases,
  type ConformanceRunner,
} from '../isolation/conformance-cases.js';
import { JEST_BIN, runnerEnv, runRunner, type RunResult } from './example-run.js';

const scratch = useScratch('jc');
const production = await scratch.database('prod');
await adminQuery(CONFORMANCE_SCHEMA, [], production.url);
const testDatabase = scratch.databaseName('test');
const testUser = scratch.roleName('user');

/** The full name of every case, as Jest reports it, read from the cases' own definitions. */
function caseNames(): string[] {
  const names: string[] = [];
  const describes: string[] = [];
  const record = (name: string) => void names.push([...describes, name].join(' '));
  const recorder: ConformanceRunner = {
    describe(name, body) {
      describes.push(name);
      body();
      describes.pop();
    },
    it: record,
    failing: record,
    beforeAll: () => undefined,
    afterAll: () => undefined,
    expect,
  };
  // Named as test/presets/jest-conformance/test/conformance.test.cjs names it.
  defineConformanceCases(recorder, { name: 'pgtwin', databaseUrl: () => '', clientUrl: () => '' });
  return names;
}

describe('the conformance cases under Jest (test/presets/jest-conformance)', () => {
  const names = caseNames();
  let run: RunResult;
  beforeAll(async () => {
    run = await runRunner(
      [JEST_BIN, '--config', 'test/presets/jest-conformance/jest.config.cjs', '--json'],
      runnerEnv({ DB_NAME: production.name, TEST_DB_NAME: testDatabase, TEST_DB_USER: testUser }),
    );
  }, CHILD_TEST_TIMEOUT_MS);

  it('runs every case, and Jest exits 0', () => {
    expect(Object.keys(run.fullNames).sort(), run.output).toEqual([...names].sort());
    expect(run.code, run.output).toBe(0);
  });

  it.each(CLIENT_KINDS)('passes every case through %s', (kind) => {
    const ofKind = names.filter((name) => name.startsWith(`pgtwin isolation through ${kind} `));
    expect(ofKind.length).toBeGreaterThan(20);
    expect(Object.fromEntries(ofKind.map((name) => [name, run.fullNames[name]]))).toEqual(
      Object.fromEntries(ofKind.map((name) => [name, 'passed'])),
    );
  });
});
