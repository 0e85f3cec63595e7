// The isolation conformance cases under Jest and pgtwin's preset, which runs each test in the worker's
// test transaction; test/isolation/conformance.test.ts runs the same cases under Vitest.
const { afterAll, beforeAll, describe, expect, it, jest: jestObject } = require('@jest/globals');
const { defineConformanceCases } = require('../../../isolation/conformance-cases.ts');
const { SCENARIO_TIMEOUT_MS } = require('../../../isolation/deadlines.ts');

jestObject.setTimeout(SCENARIO_TIMEOUT_MS);
// At module load TEST_DATABASE_URL names the worker's test database; from pgtwin's beforeAll on, its endpoint.
const database = process.env.TEST_DATABASE_URL;

defineConformanceCases(
  { describe, it, failing: it.failing, beforeAll, afterAll, expect },
  { name: 'pgtwin', databaseUrl: () => database, clientUrl: () => process.env.TEST_DATABASE_URL },
);
