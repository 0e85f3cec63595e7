import * as vitest from 'vitest';
import type { AroundEachHook } from '../../src/isolation/runner-hooks.js';
import { DatabaseTarget } from '../../src/config/database-target.js';
import { installTestFileHooks } from '../../src/pipeline/test-file-hooks.js';
import {
  maskConnectionDetails,
  workerTestTarget,
  type TargetFields,
} from '../../src/pipeline/worker-handoff.js';
import { HANDOFF_KEY } from './provide-keys.js';

// Vitest per-test setup file (`setupFiles: ['pgtwin/vitest/setup']`): runs before each test file.
const { afterAll, afterEach, beforeAll, beforeEach, inject } = vitest;
// Vitest 4.1 added aroundEach; without it (Vitest 3) tests run one at a time in beforeEach / afterEach.
const { aroundEach } = vitest as { aroundEach?: AroundEachHook };
const handoff = inject(HANDOFF_KEY);
// `inject('pgtwin')` hands every caller in this worker one object: point it at the worker's own database.
// It follows the worker's wire endpoint while a test file runs, and an opted-out test's copy, as
// TEST_DATABASE_URL does.
const pointAt = (target: TargetFields) =>
  maskConnectionDetails(
    Object.assign(inject('pgtwin'), {
      host: target.host,
      port: target.port,
      database: target.database,
      ssl: target.ssl,
      options: target.options,
      url: new DatabaseTarget(target).url({ withPassword: true }),
    }),
  );
pointAt(workerTestTarget(handoff));
installTestFileHooks({ beforeAll, beforeEach, afterEach, afterAll, aroundEach }, handoff, pointAt);
