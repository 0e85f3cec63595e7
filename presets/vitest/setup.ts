import { afterAll, afterEach, beforeAll, beforeEach, inject } from 'vitest';
import { installTestFileHooks } from '../../src/pipeline/test-file-hooks.js';
import { maskConnectionDetails } from '../../src/pipeline/worker-handoff.js';
import { HANDOFF_KEY } from './provide-keys.js';

// Vitest per-test setup file (`setupFiles: ['pgtwin/vitest/setup']`): runs before each test file.
maskConnectionDetails(inject('pgtwin'));
installTestFileHooks({ beforeAll, beforeEach, afterEach, afterAll }, inject(HANDOFF_KEY));
