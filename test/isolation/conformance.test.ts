/**
 * The isolation conformance cases (conformance-cases.ts) under Vitest, through every client kind. Run them
 * against pg-transactional-tests with PGTWIN_ISOLATION_ENGINE=pg-transactional-tests (see BASELINE.md);
 * test/presets/jest-conformance.test.ts runs the same cases under Jest with pgtwin's preset.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { adminQuery, useScratch } from '../helpers/databases.js';
import { CONFORMANCE_SCHEMA, defineConformanceCases } from './conformance-cases.js';
import { SCENARIO_TIMEOUT_MS } from './deadlines.js';
import { selectEngine } from './engines.js';

// Bounded, so that an engine that hangs fails its scenario instead of stalling the run; so are the per-test
// hooks. The file's beforeAll and afterAll create and drop its database and keep the suite's generous limit.
vi.setConfig({ testTimeout: SCENARIO_TIMEOUT_MS });

const engine = selectEngine();
const scratch = useScratch('conformance');
let url: string;

beforeAll(async () => {
  url = (await scratch.database()).url;
  await adminQuery(CONFORMANCE_SCHEMA, [], url);
  await engine.setup(url);
});
beforeEach(() => engine.beginTest(), SCENARIO_TIMEOUT_MS);
afterEach(() => engine.endTest(), SCENARIO_TIMEOUT_MS);
afterAll(() => engine.teardown());

defineConformanceCases(
  { describe, it, failing: it.fails, beforeAll, afterAll, expect },
  { name: engine.name, databaseUrl: () => url, clientUrl: () => engine.clientUrl(url) },
);
