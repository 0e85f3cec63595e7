import { withConcurrentGroups } from '../../src/isolation/jest-concurrent-groups.js';
import type { RunnerHooks } from '../../src/isolation/runner-hooks.js';
import { installTestFileHooks } from '../../src/pipeline/test-file-hooks.js';
import { readHandoff } from '../../src/pipeline/worker-handoff.js';

// Jest per-test setup file (setupFilesAfterEnv): runs in each test file's environment, hooks are globals.
installTestFileHooks(withConcurrentGroups(globalThis as unknown as RunnerHooks), readHandoff());
