import { writeSync } from 'node:fs';
import path from 'node:path';
import type {
  Reporter,
  ReportedHookContext,
  SerializedError,
  TestModule,
  TestRunEndReason,
  TestSuite,
  Vitest,
} from 'vitest/node';

/** The closing line's counts. */
export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
}

/**
 * Ends the run with one plain `N passed, N failed, N skipped` line, which CI reads beside the exit code, so
 * the line must never say `0 failed` when Vitest fails the run. What counts as one failure:
 *
 * - a failed test; a failing `beforeEach`/`afterEach` fails its test (Vitest marks the test failed), so
 *   it counts once, as that test;
 * - each error of a failing `beforeAll`/`afterAll`, at file or `describe` level: one failure of its own,
 *   beside its tests. A passing test followed by a failing `afterAll` is `1 passed, 1 failed`; the tests a
 *   failing `beforeAll` kept from running count as skipped;
 * - a file that failed to load or collect (an import or a `describe` callback threw);
 * - each unhandled error or rejection Vitest reports (unless `dangerouslyIgnoreUnhandledErrors`);
 * - the run itself, when Vitest fails it and none of the above explains why (no test files, an
 *   interrupted run, a global teardown that threw after the line was printed, a coverage threshold).
 *
 * Every failure but a failed test is listed above the line with its file and hook, as the default
 * reporter's output around them can scroll far away. The last check runs at process exit: if the exit
 * code is not 0 while the line printed said `0 failed`, a corrected line follows, so the last one is true.
 */
export default class SummaryReporter implements Reporter {
  /** Suite hooks started and not finished, per file or suite id: Vitest reports no end for a failed hook. */
  private readonly unfinishedHooks = new Map<string, Set<string>>();
  private ignoreUnhandled = false;
  private root = process.cwd();
  private last: Summary | undefined;

  constructor() {
    process.once('exit', (code) => this.checkExitCode(code));
  }

  onInit(vitest: Vitest): void {
    this.ignoreUnhandled = vitest.config.dangerouslyIgnoreUnhandledErrors === true;
    this.root = vitest.config.root;
  }

  onTestRunStart(): void {
    this.unfinishedHooks.clear();
  }

  onHookStart(hook: ReportedHookContext): void {
    if (hook.name !== 'beforeAll' && hook.name !== 'afterAll') return;
    const names = this.unfinishedHooks.get(hook.entity.id) ?? new Set<string>();
    names.add(hook.name);
    this.unfinishedHooks.set(hook.entity.id, names);
  }

  onHookEnd(hook: ReportedHookContext): void {
    this.unfinishedHooks.get(hook.entity.id)?.delete(hook.name);
  }

  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    reason: TestRunEndReason,
  ): void {
    const counts: Summary = { passed: 0, failed: 0, skipped: 0 };
    const failures: string[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
      for (const entity of [module, ...module.children.allSuites()]) {
        for (const error of entity.errors()) {
          counts.failed++;
          failures.push(`${this.describeEntityError(entity)}: ${firstLine(error)}`);
        }
      }
    }
    for (const error of unhandledErrors) {
      const file =
        typeof error.VITEST_TEST_PATH === 'string' ? path.relative(this.root, error.VITEST_TEST_PATH) : '';
      const test = typeof error.VITEST_TEST_NAME === 'string' ? ` > ${error.VITEST_TEST_NAME}` : '';
      const where = file ? ` in ${file}${test}` : '';
      const type = typeof error.type === 'string' ? error.type : 'Unhandled error';
      if (this.ignoreUnhandled) {
        failures.push(`ignored ${type.toLowerCase()}${where}: ${firstLine(error)}`);
        continue;
      }
      counts.failed++;
      failures.push(`${type.toLowerCase()}${where}: ${firstLine(error)}`);
    }
    if (reason !== 'passed' && counts.failed === 0) {
      counts.failed++;
      failures.push(
        reason === 'interrupted'
          ? 'run interrupted before every test finished'
          : testModules.length === 0
            ? 'no test files ran'
            : 'Vitest failed the run with no failed test, hook or file: see its output above',
      );
    }
    this.print(counts, failures);
  }

  private describeEntityError(entity: TestModule | TestSuite): string {
    const file = entity.type === 'module' ? entity.relativeModuleId : entity.module.relativeModuleId;
    const where = entity.type === 'module' ? file : `${file} > ${entity.fullName}`;
    const hooks = [...(this.unfinishedHooks.get(entity.id) ?? [])];
    if (hooks.length > 0) return `failed ${hooks.join('/')} hook in ${where}`;
    return entity.type === 'module' ? `failed to load ${where}` : `failed to collect ${where}`;
  }

  private checkExitCode(code: number): void {
    if (code === 0 || (this.last !== undefined && this.last.failed > 0)) return;
    const counts = this.last ?? { passed: 0, failed: 0, skipped: 0 };
    this.print(
      { ...counts, failed: 1 },
      [`the run failed after the line above (exit code ${code}): see the errors Vitest printed`],
      true,
    );
  }

  private print(counts: Summary, failures: string[], atExit = false): void {
    this.last = counts;
    const listed = failures.length
      ? `\nFailures besides failed tests, each counted below:\n${failures.map((f) => `  ${f}\n`).join('')}`
      : '';
    const text = `${listed}\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`;
    // At exit, only synchronous writes still reach the output.
    if (atExit) writeSync(process.stdout.fd, text);
    else process.stdout.write(text);
  }
}

function firstLine(error: SerializedError): string {
  const message = `${error.name && error.name !== 'Error' ? `${error.name}: ` : ''}${error.message}`;
  return message.split('\n')[0]!.trim();
}
