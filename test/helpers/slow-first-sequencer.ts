import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that drive whole child runs (a demo, a Vitest or Jest project, a killed setup), one to three minutes
 * each. Vitest starts the longest files first only once its cache knows their durations; a fresh clone (CI)
 * has no cache and starts files in path order, which left these for the end of the run (measured on the
 * file durations of one run: 343 s with four workers in path order, 310 s with these first).
 */
const CHILD_RUNS =
  /test\/(demo\/|presets\/|provision\/crash-|speed\/warm-start|guard\/pooler-alias|cli\/cli-(commands|mistakes)|helpers\/summary-reporter)/;

/** Vitest's order (failed first, then longest first when known), with the files that drive child runs first. */
export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const slow = (file: TestSpecification) => CHILD_RUNS.test(file.moduleId.replaceAll('\\', '/'));
    return [...sorted.filter(slow), ...sorted.filter((file) => !slow(file))];
  }
}
