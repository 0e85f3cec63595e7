#!/usr/bin/env node
// Runs node-postgres's own integration tests against a plain server and inside pgtwin's in-process
// isolation, and prints pass/fail per test and per mode. Usage (see README.md beside this file):
//   node test/isolation/node-postgres-suite/run.mjs <node-postgres checkout> [--cases] [--each] [--mode plain|pgtwin|endpoint] [file ...]
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** The files holding the client-API cases issue #17 names, and which case each stands for. */
const CASES = {
  'client/api-tests.js': 'query_timeout, end() during a query',
  'client/error-handling-tests.js': 'end() during a query, query({ text: {} }), lost connection',
  'client/query-error-handling-prepared-statement-tests.js': 'end() during a query, lost connection',
  'client/notice-tests.js': 'notice',
  'client/pipelining-tests.js': 'pipeline, drain',
  'client/pipeline-portal-tests.js': 'pipeline',
  'client/query-as-promise-tests.js': 'Promise',
  'client/simple-query-tests.js': 'drain, a throwing handler',
  'client/no-data-tests.js': 'drain',
  'client/empty-query-tests.js': 'drain',
  'client/big-simple-query-tests.js': 'drain',
  'client/type-coercion-tests.js': 'drain',
  'connection-pool/error-tests.js': 'lost connection',
};
const FILE_TIMEOUT_MS = 120_000;

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const args = process.argv.slice(2);
const checkout = args.shift();
if (!checkout)
  throw new Error(
    'usage: run.mjs <node-postgres checkout> [--cases] [--each] [--mode plain|pgtwin|endpoint] [file ...]',
  );
const modes = args.includes('--mode') ? [args[args.indexOf('--mode') + 1]] : ['plain', 'pgtwin'];
const named = args.filter((arg, i) => !arg.startsWith('--') && args[i - 1] !== '--mode');

// The tests require '../lib' (the pg under test): a copy of them beside a link to the installed pg.
const work = mkdtempSync(path.join(os.tmpdir(), 'pgtwin-npg-'));
cpSync(path.join(checkout, 'packages/pg/test'), path.join(work, 'test'), { recursive: true });
const installedPg = path.dirname(createRequire(path.join(root, 'package.json')).resolve('pg'));
symlinkSync(installedPg, path.join(work, 'lib'));
const testDir = path.join(work, 'test');
const integration = path.join(testDir, 'integration');
const all = ['client', 'connection-pool', 'gh-issues']
  .flatMap((dir) => readdirSync(path.join(integration, dir)).map((name) => `${dir}/${name}`))
  .concat(['domain-tests.js'])
  .filter((name) => name.endsWith('-tests.js'))
  // Files that register no test run outside tests, so they measure nothing pgtwin does differently.
  .filter((name) => readFileSync(path.join(integration, name), 'utf8').includes('Suite('));
const files = named.length > 0 ? named : args.includes('--cases') ? Object.keys(CASES) : all;

const server = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
};
const admin = async (sql) => {
  const client = new pg.Client({ ...server, database: 'postgres' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
};

const resultsFile = path.join(work, 'results.jsonl');
const listFile = path.join(work, 'listed.jsonl');

/** Runs one test file (with `only`, only that test of it) in `mode`, on a database of its own. */
async function runFile(mode, file, extra = {}) {
  const database = `pgtwin_npg_${mode}_${process.pid}`;
  await admin(`CREATE DATABASE ${database}`);
  const started = Date.now();
  const run = spawnSync(
    process.execPath,
    ['--import', path.join(here, 'preload.mjs'), path.join(integration, file)],
    {
      cwd: root,
      timeout: FILE_TIMEOUT_MS,
      encoding: 'utf8',
      env: {
        ...process.env,
        ...{ PGHOST: server.host, PGPORT: String(server.port), PGUSER: server.user, PGDATABASE: database },
        NODE_PATH: path.join(root, 'node_modules'),
        NPG_SUITE_RESULTS: resultsFile,
        NPG_SUITE_MODE: mode,
        NPG_SUITE_FILE: file,
        NPG_SUITE_TEST_DIR: testDir,
        ...extra,
      },
    },
  );
  await admin(`DROP DATABASE ${database} WITH (FORCE)`);
  const exit = run.error ? `killed after ${FILE_TIMEOUT_MS} ms` : `exit ${run.status}`;
  const only = extra.NPG_SUITE_ONLY ? ` › ${extra.NPG_SUITE_ONLY}` : '';
  console.log(`${mode.padEnd(8)} ${file}${only} (${exit}, ${Date.now() - started} ms)`);
  if (process.env.NPG_SUITE_VERBOSE) console.log(run.stdout, run.stderr);
}

/** The names of a file's top-level tests (tests a test registers while it runs are not listed). */
async function testsOf(file) {
  await runFile('plain', file, { NPG_SUITE_LIST: listFile });
  // A file that fails to load (a module it requires is missing) lists nothing.
  if (!existsSync(listFile)) return [];
  const listed = readFileSync(listFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  rmSync(listFile);
  return listed.filter((entry) => entry.file === file).map((entry) => entry.test);
}

// `--each`: every test in a process of its own, so that one that crashes its process does not stop the rest.
const each = args.includes('--each');
const names = new Map();
for (const mode of modes) {
  for (const file of files) {
    if (!each) {
      await runFile(mode, file);
      continue;
    }
    if (!names.has(file)) names.set(file, await testsOf(file));
    for (const name of names.get(file)) await runFile(mode, file, { NPG_SUITE_ONLY: name });
  }
}

const results = readFileSync(resultsFile, 'utf8')
  .trim()
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line));
const table = new Map();
for (const result of results) {
  const key = `${result.file} › ${result.test}`;
  const entry = table.get(key) ?? { file: result.file };
  entry[result.mode] = result;
  table.set(key, entry);
}
console.log(
  '\n| test | case | ' + modes.join(' | ') + ' |\n| --- | --- |' + modes.map(() => ' --- |').join(''),
);
for (const [key, entry] of table) {
  const cells = modes.map((mode) => {
    const result = entry[mode];
    if (!result) return 'not run';
    return result.status === 'fail' ? `FAIL: ${result.error}`.replaceAll('|', '\\|') : result.status;
  });
  console.log(`| ${key} | ${CASES[entry.file] ?? ''} | ${cells.join(' | ')} |`);
}
for (const mode of modes) {
  // Late checks (an awaited event that never came) are listed above, not counted as tests.
  const mine = results.filter((result) => result.mode === mode && !result.test.startsWith('(late check)'));
  const count = (status) => mine.filter((result) => result.status === status).length;
  console.log(
    `${mode}: ${count('pass')} pass, ${count('fail')} fail, ${count('skipped')} skipped (${files.length} files)`,
  );
}
rmSync(work, { recursive: true, force: true });
