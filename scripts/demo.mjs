// `npm run demo` (node scripts/demo.mjs --build): pgtwin's main job with no PostgreSQL installed. Starts an
// embedded PostgreSQL, builds a demo production (contentgen_db) on it, runs pgtwin's pipeline into
// contentgen_test_db, runs examples/vitest-kysely through the real Vitest, proves the isolation and that
// production was only read, then stops the server. Exits non-zero when any step or proof fails.
//
// Environment: PGTWIN_PROVIDER (default: embedded, whatever the configuration says), PGTWIN_DEMO_DATA_DIR
// (default node_modules/.cache/pgtwin/demo), PGTWIN_DEBUG=1 (details and stack traces).
/* global AbortController -- Node's; the shared ESLint globals do not list it */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  buildProduction,
  databasesNamed,
  overallChecksum,
  resetDemoDatabases,
  tableContents,
  totalRows,
  withClient,
} from './demo/databases.mjs';
import { DemoError } from './demo/demo-error.mjs';
import { loadPgtwin } from './demo/load-pgtwin.mjs';
import { runExample } from './demo/run-example.mjs';

const root = path.resolve(import.meta.dirname, '..');
const EXAMPLE = 'examples/vitest-kysely';
const SEEDS = `${EXAMPLE}/seeds/seed_data.json`;
const PRODUCTION = 'contentgen_db';
const TEST = 'contentgen_test_db';
const DEFAULT_DATA_DIR = 'node_modules/.cache/pgtwin/demo';
// Pairs of example tests: the first writes a row, the second, run next, must not see it.
const ISOLATION_PAIRS = [
  ['lets a test create a project', 'rolls that project back before the next test'],
  [
    'hands a test a db connection inside its transaction',
    'does not see what the previous test wrote through db',
  ],
];

const debug = process.env.PGTWIN_DEBUG === '1' || process.argv.includes('--debug');
const secrets = new Set();
let maskSecrets = (text) => text;
const print = (label, text) => console.log(maskSecrets(`${label.padEnd(12)}${text}`, [...secrets]));
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const count = (n) => n.toLocaleString('en-US');
const clip = (text, width = 84) => (text.length > width ? `${text.slice(0, width - 1)}…` : text);

const began = performance.now();
const abort = new AbortController();
let server;
let serverStartMs = 0;
let failed = false;

async function main() {
  print('pgtwin demo', 'a test twin of production, with no PostgreSQL installed');
  if (process.argv.includes('--build')) await build();
  else if (!existsSync(path.join(root, 'dist/vitest/index.js'))) {
    throw new DemoError('dist/ is missing: run npm run build first (npm run demo does both).');
  }

  const pgtwin = await loadPgtwin();
  maskSecrets = pgtwin.maskSecrets;
  const logged = [];
  const logger = pgtwin.createLogger({
    secrets,
    write: (line) => (debug ? console.error(maskSecrets(line, [...secrets])) : logged.push(line)),
  });

  // Names are the demo's own; the configured addresses only say whether a server would have been there.
  const env = { ...process.env, DB_NAME: PRODUCTION, TEST_DB_NAME: TEST };
  const dataDir = path.resolve(root, process.env.PGTWIN_DEMO_DATA_DIR || DEFAULT_DATA_DIR);
  const common = { rootDir: root, configFile: false, env, seeds: path.join(root, SEEDS) };
  const forced = process.env.PGTWIN_PROVIDER ? {} : { provider: 'embedded' };
  const configured = await pgtwin.resolveConfig({
    ...common,
    ...forced,
    embedded: { dataDir, persistent: false },
  });
  for (const target of [configured.production, configured.test, configured.admin])
    secrets.add(target.password);

  if (process.env.PGTWIN_PROVIDER) {
    server = await startServerTimed(pgtwin, configured, logger);
    print('provider', `${server.provider}, as PGTWIN_PROVIDER says: ${server.reason}`);
  } else {
    const { host, port } = configured.test;
    const probe = await pgtwin.probePostgres(host, port);
    const answer = probe.answered === 'postgres' ? 'answers, but is not used' : 'does not answer';
    print(
      'provider',
      `embedded, always for the demo unless PGTWIN_PROVIDER says otherwise (the configured server ${host}:${port} ${answer})`,
    );
    server = await startServerTimed(pgtwin, configured, logger);
  }
  const admin = server.admin;
  const version = await serverVersion(admin);
  const where = dataDir.startsWith(`${root}${path.sep}`) ? path.relative(root, dataDir) : dataDir;
  const cluster =
    server.provider !== 'embedded'
      ? `the ${server.provider === 'server' ? 'configured server' : server.provider}`
      : logged.some((line) => / initialised /.test(line))
        ? `new cluster in ${where}`
        : `reused cluster in ${where}`;
  print(
    'server',
    `PostgreSQL ${version} at ${admin.host}:${admin.port}, ${cluster}` +
      (server.provider === 'server' ? '' : `, up in ${seconds(serverStartMs)}`),
  );

  // Production and test both on this server, reached as its superuser.
  const onServer = { host: admin.host, port: admin.port };
  const adminFields = { user: admin.user, password: admin.password };
  const options = {
    ...common,
    production: { ...onServer, ...adminFields, database: PRODUCTION },
    test: { ...onServer, database: TEST },
    admin: { ...onServer, ...adminFields, database: admin.database },
  };
  const config = await pgtwin.resolveConfig(options);
  secrets.add(config.test.password);

  const productionBuilt = performance.now();
  await resetDemoDatabases(pgtwin, config);
  await buildProduction(pgtwin, config);
  const productionBefore = await tableContents(config.production);
  print(
    'production',
    `${PRODUCTION}: ${productionBefore.size} tables, ${count(totalRows(productionBefore))} rows from the contentgen fixture, ` +
      `built in ${seconds(performance.now() - productionBuilt)}`,
  );

  // pgtwin's global setup, as the presets run it, on the server already started (it must not stop it).
  const twin = await pgtwin.runGlobalSetup({
    ...options,
    logger,
    startServer: async () => ({ ...server, stop: async () => {}, [Symbol.asyncDispose]: async () => {} }),
  });
  const testAsAdmin = admin.withDatabase(TEST);
  let testBefore;
  try {
    print('pipeline', `${PRODUCTION} → ${TEST}, ${twin.phases.reduce((sum, phase) => sum + phase.ms, 0)} ms`);
    for (const phase of twin.phases) {
      print(
        '',
        `${phase.name.padEnd(10)}${`${phase.ms} ms`.padStart(8)}  ${clip(phase.detail ?? '')}`.trimEnd(),
      );
    }
    testBefore = await tableContents(testAsAdmin);
  } finally {
    await twin.close();
  }
  const mirrored = config.mirror.full.filter((table) => testBefore.has(table));
  const mirroredRows = mirrored.reduce((sum, table) => sum + testBefore.get(table).rows, 0);
  const faithful = mirrored.every(
    (table) => testBefore.get(table).checksum === productionBefore.get(table)?.checksum,
  );
  print(
    'twin',
    `${testBefore.size} tables cloned, ${count(mirroredRows)} rows mirrored (${mirrored.join(', ')}` +
      `${faithful ? ', identical to production' : ', DIFFERENT from production'}), ` +
      `${count(totalRows(testBefore) - mirroredRows)} seed rows`,
  );
  if (!faithful) failed = true;

  const run = await runExample({ root, example: EXAMPLE, env: exampleEnv(config), signal: abort.signal });
  const statuses = run.tests.reduce(
    (all, test) => ({ ...all, [test.status]: (all[test.status] ?? 0) + 1 }),
    {},
  );
  const passed = statuses.passed ?? 0;
  const other = Object.entries(statuses)
    .filter(([status]) => status !== 'passed' && status !== 'failed')
    .map(([status, n]) => `, ${n} ${status}`)
    .join('');
  const files = new Set(run.tests.map((test) => test.file)).size;
  print(
    'tests',
    `${EXAMPLE}: ${passed} passed, ${statuses.failed ?? 0} failed${other} ` +
      `(${files} files, real vitest, ${seconds(run.ms)})`,
  );
  if (run.code !== 0 || passed === 0 || statuses.failed) {
    failed = true;
    const tail = run.output.trim().split('\n').slice(-25).join('\n');
    console.log(
      maskSecrets(`--- vitest exited with code ${run.code}; the end of its output:\n${tail}\n---`, [
        ...secrets,
      ]),
    );
  }

  const pairs = ISOLATION_PAIRS.filter(([writer, reader]) => {
    const index = (title) => run.tests.findIndex((test) => test.title === title && test.status === 'passed');
    return index(writer) >= 0 && index(reader) === index(writer) + 1;
  });
  for (const [writer] of pairs) print('isolation', `"${writer}" wrote; the next test did not see it`);
  if (pairs.length === 0) {
    failed = true;
    print('isolation', 'FAILED: no passing write-then-read pair of tests in the report');
  }

  const testAfter = await tableContents(testAsAdmin);
  const leftovers = await databasesNamed(admin, `${TEST}_`);
  const sameRows = [...testBefore].every(([table, { rows }]) => testAfter.get(table)?.rows === rows);
  print(
    'isolation',
    `${TEST} rows: ${count(totalRows(testBefore))} before the tests, ${count(totalRows(testAfter))} after` +
      `${sameRows ? ' (every table alike)' : ' (CHANGED)'}; ` +
      (leftovers.length === 0 ? 'no copies left behind' : `LEFT BEHIND: ${leftovers.join(', ')}`),
  );
  if (!sameRows || leftovers.length > 0) failed = true;

  const productionAfter = await tableContents(config.production);
  const before = overallChecksum(productionBefore);
  const after = overallChecksum(productionAfter);
  print(
    'production',
    before === after
      ? `unchanged: checksum ${before} before and after (${productionAfter.size} tables, only read)`
      : `CHANGED: checksum ${before} before, ${after} after`,
  );
  if (before !== after) failed = true;
}

/** `npm run build`, quiet unless it fails. */
async function build() {
  const started = performance.now();
  const npm = process.env.npm_execpath;
  const [command, args] = npm ? [process.execPath, [npm, 'run', 'build']] : ['npm', ['run', 'build']];
  const { code, output } = await new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: abort.signal,
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
  if (code !== 0) {
    throw new DemoError(
      `npm run build failed (exit code ${code}):\n${output.trim().split('\n').slice(-20).join('\n')}`,
    );
  }
  print('build', `npm run build, ${seconds(performance.now() - started)}`);
}

async function startServerTimed(pgtwin, config, logger) {
  const started = performance.now();
  const server = await pgtwin.startServer(config, { logger });
  secrets.add(server.admin.password);
  serverStartMs = performance.now() - started;
  return server;
}

function serverVersion(target) {
  return withClient(
    target,
    async (client) => (await client.query('SHOW server_version')).rows[0].server_version,
  );
}

/** The example run's whole environment: production and test on the demo's server, nothing else of pgtwin's. */
function exampleEnv(config) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(VITEST|TEST_|DB_|DATABASE_URL|PGTWIN_|JEST_)/.test(name))
      env[name] = value;
  }
  const { production, test, admin } = config;
  return {
    ...env,
    DB_HOST: production.host,
    DB_PORT: String(production.port),
    DB_NAME: production.database,
    DB_USER: production.user,
    DB_PASS: production.password,
    TEST_DB_HOST: test.host,
    TEST_DB_PORT: String(test.port),
    TEST_DB_NAME: test.database,
    TEST_DB_USER: test.user,
    TEST_DB_PASS: test.password,
    TEST_DB_ADMIN_URL: admin.url({ withPassword: true }),
    // The server is already there: the run uses it as configured.
    PGTWIN_PROVIDER: 'server',
    ...(debug && { PGTWIN_DEBUG: '1' }),
  };
}

let stopping;
/** Stops the server the demo started (not a configured one); once, whoever asks first. */
function stopServer() {
  stopping ??= (async () => {
    if (!server) return;
    await server.stop();
    if (server.provider !== 'server') print('server', `${server.provider} PostgreSQL stopped`);
  })().catch((error) =>
    console.error(maskSecrets(`demo: could not stop the server: ${error.message}`, [...secrets])),
  );
  return stopping;
}

let interrupted;
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.once(signal, () => {
    interrupted = signal;
    abort.abort();
    console.error(`demo interrupted (${signal}): stopping the server`);
    stopServer().finally(() => process.exit(code));
  });
}

try {
  await main();
} catch (error) {
  failed = true;
  if (!interrupted) {
    const message = error instanceof DemoError || !debug ? error.message : error.stack;
    console.error(maskSecrets(`demo failed: ${message}`, [...secrets]));
    if (!(error instanceof DemoError) && !debug) console.error('(set PGTWIN_DEBUG=1 for details)');
  }
} finally {
  await stopServer();
}
if (!interrupted) {
  print('result', `${failed ? 'demo FAILED' : 'demo passed'} in ${seconds(performance.now() - began)}`);
  process.exitCode = failed ? 1 : 0;
}
