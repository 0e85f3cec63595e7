import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each file of 7 s or more took in a whole `npm test` on the 2-core development machine (2026-12-04,
 * three workers): the files that drive child runs (a demo, a Vitest or Jest project, a killed setup, the CLI)
 * and the long ones that mostly wait (the conformance suite, 244 tests one after another). Vitest starts the
 * longest files first only once its cache knows their durations; a fresh clone (CI) has no cache and starts
 * files in path order, which left the child runs for the end (343 s with four workers in path order, 310 s
 * with them first). Started longest first, no file of 10 s or more is left to run alone at the end (with
 * only the child runs first, the conformance suite ran its 23 s last, alone).
 */
const SECONDS: Record<string, number> = {
  'test/presets/vitest-preset.test.ts': 66,
  'test/provision/crash-vitest.test.ts': 57,
  'test/speed/warm-start.test.ts': 44,
  'test/provision/crash-creates.test.ts': 44,
  'test/demo/demo.test.ts': 41,
  // Its tests take no time of their own: the whole Jest run is in its beforeAll (about 25 s standalone).
  'test/presets/jest-conformance.test.ts': 40,
  'test/provision/crash-setup.test.ts': 37,
  'test/cli/cli-commands.test.ts': 37,
  'test/cli/cli-mistakes.test.ts': 32,
  'test/isolation/conformance.test.ts': 31,
  'test/presets/jest-preset.test.ts': 30,
  'test/guard/pooler-alias.test.ts': 29,
  'test/presets/opt-out.test.ts': 25,
  'test/helpers/summary-reporter.test.ts': 15,
  'test/presets/concurrency.test.ts': 15,
  'test/speed/template.test.ts': 14,
  'test/provider/embedded-warm.test.ts': 13,
  'test/readme/readme-snippets.test.ts': 11,
  'test/mirror/production-baseline.test.ts': 11,
  'test/provision/provision-test-database.test.ts': 9,
  'test/cli/cli-doctor.test.ts': 9,
  'test/seed/load-seed-data.test.ts': 9,
  'test/guard/production-guard.test.ts': 9,
  'test/speed/workers-gc.test.ts': 9,
  'test/mirror/sync-tables.test.ts': 9,
  'test/mirror/load-tables.test.ts': 8,
  'test/speed/build-twin.test.ts': 7,
};

function secondsOf(file: TestSpecification): number {
  const id = file.moduleId.replaceAll('\\', '/');
  const known = Object.keys(SECONDS).find((name) => id.endsWith(`/${name}`));
  return known ? SECONDS[known]! : 0;
}

/** The files of {@link SECONDS} longest first, then the rest in Vitest's order (failed first, then longest when known). */
export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const known = sorted.filter((file) => secondsOf(file) > 0);
    known.sort((a, b) => secondsOf(b) - secondsOf(a));
    return [...known, ...sorted.filter((file) => secondsOf(file) === 0)];
  }
}
