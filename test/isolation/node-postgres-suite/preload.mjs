// Loaded with `node --import` before one node-postgres integration test file (see run.mjs). It replaces the
// suite runner (test/suite.js) so that a failing test is recorded and the next one still runs (node-postgres's
// own runner exits at the first failure). In `pgtwin` mode each test runs as one pgtwin test: in-process
// isolation is enabled for the database and every `suite.test` runs inside `isolation.runTest`, as
// pgtwin's Vitest preset runs each test in `aroundEach`. `endpoint` mode does the same, but the test files'
// clients connect to pgtwin's wire endpoint (PGHOST/PGPORT) and are not taken over.
import { appendFileSync } from 'node:fs';
import { setImmediate } from 'node:timers';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const { NPG_SUITE_RESULTS: results, NPG_SUITE_MODE: mode, NPG_SUITE_FILE: file } = process.env;
// NPG_SUITE_LIST: only write the file's test names there. NPG_SUITE_ONLY: run only the test of that name.
const { NPG_SUITE_LIST: list, NPG_SUITE_ONLY: only } = process.env;
const suitePath = path.join(process.env.NPG_SUITE_TEST_DIR, 'suite.js');
let isolation;
if (mode === 'pgtwin' || mode === 'endpoint') {
  const { createJiti } = await import('jiti');
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const { enableIsolation } = await createJiti(import.meta.url).import(
    path.join(root, 'src/isolation/index.ts'),
  );
  isolation = await enableIsolation({
    host: process.env.PGHOST,
    port: Number(process.env.PGPORT),
    user: process.env.PGUSER,
    database: process.env.PGDATABASE,
    detectLeaks: false,
    // `endpoint`: the driver runs unmodified against pgtwin's wire endpoint instead of being taken over.
    implicit: mode === 'pgtwin',
    endpoint: mode === 'endpoint',
  });
  if (isolation.endpoint) {
    process.env.PGHOST = isolation.endpoint.host;
    process.env.PGPORT = String(isolation.endpoint.port);
  }
}

let current;
const record = (test, status, error) =>
  appendFileSync(
    results,
    JSON.stringify({
      mode,
      file,
      test,
      status,
      error: error && String(error.message ?? error).split('\n')[0],
    }) + '\n',
  );

/** node-postgres's `Suite` (test/suite.js), which needs async 2: tests run one after another, in order. */
class Suite {
  queue = [];
  running = false;

  test(name, action) {
    if (list) return appendFileSync(list, JSON.stringify({ file, test: name }) + '\n');
    if (only !== undefined && name !== only) return;
    this.queue.push({ name, action, timeout: 5000 });
    if (this.running) return;
    this.running = true;
    setImmediate(() => this.next());
  }

  next() {
    const test = this.queue.shift();
    if (!test) {
      this.running = false;
      void isolation?.close();
      return;
    }
    void runOne(test).then(() => this.next());
  }
}
createRequire(import.meta.url).cache[suitePath] = {
  id: suitePath,
  filename: suitePath,
  loaded: true,
  exports: Suite,
};

async function runOne(test) {
  process.stdout.write(`  ${test.name} `);
  if (!test.action) return record(test.name, 'skipped');
  current = test.name;
  const body = () =>
    new Promise((resolve) => {
      const timer = setTimeout(
        () => resolve(new Error(`did not complete within ${test.timeout} ms`)),
        test.timeout,
      );
      const done = (error) => {
        clearTimeout(timer);
        resolve(error ?? undefined);
      };
      try {
        if (test.action.length > 0) return test.action.call(test, done);
        Promise.resolve(test.action.call(test)).then(
          () => done(),
          (error) => done(error ?? new Error('rejected')),
        );
      } catch (error) {
        done(error);
      }
    });
  const error = await (isolation ? isolation.runTest(test.name, body) : body()).then(
    undefined,
    (error) => error,
  );
  current = undefined;
  record(test.name, error ? 'fail' : 'pass', error);
  process.stdout.write(error ? `FAILED: ${error.message}\n` : '✔\n');
}

// test-helper's `assert.emits` reports an event that never came, seconds later, through a global `test`.
globalThis.test = (name, check) => {
  try {
    check();
  } catch (error) {
    record(`(late check) ${name}`, 'fail', error);
  }
};

process.on('exit', (code) => {
  if (current !== undefined)
    record(current, 'fail', new Error(`the process exited (code ${code}) during the test`));
});
