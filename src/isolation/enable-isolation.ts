import pg from 'pg';
import { DEFAULT_MAX_CONNECTIONS } from '../config/pgtwin-config.js';
import { formatLeakReport, hasLeaks, LeakDetector, type LeakReport } from './leak-detector.js';
import { WireEndpoint, type EndpointAddress } from '../endpoint/wire-endpoint.js';
import { addSessionAddress, bindClient, registerSession } from './pg-patch.js';
import { TestSession, type SessionTarget } from './test-session.js';

/** How long a test may wait on itself (a pool checkout, the shared connection) before it fails. */
export const DEFAULT_WAIT_TIMEOUT_MS = 5_000;

/** Options of {@link enableIsolation}: the test database's pg settings plus these. */
export interface IsolationOptions extends pg.ClientConfig {
  /**
   * Take over every `pg` client and pool the application creates for this database (implicit mode). When
   * false, only clients from {@link Isolation.client} run in the test transaction (explicit mode).
   * @default true
   */
  implicit?: boolean;
  /**
   * How long a statement or a `pool.connect()` may wait for something only the same test can release
   * before it fails with an `IsolationError`, instead of hanging.
   * @default DEFAULT_WAIT_TIMEOUT_MS
   */
  waitTimeoutMs?: number;
  /**
   * Most real connections isolation holds at once: tests that run concurrently ({@link Isolation.runTest})
   * each need one. A test that would need one more fails with an `IsolationError` naming this option.
   * @default DEFAULT_MAX_CONNECTIONS
   */
  maxConnections?: number;
  /**
   * Report tables changed outside the test transactions when isolation closes: `true` prints the report
   * with `console.warn`, a function receives it, `false` skips the two row counts this costs.
   * @default true
   */
  detectLeaks?: boolean | ((report: LeakReport) => void);
  /**
   * Also serve the test database on a PostgreSQL wire-protocol endpoint (127.0.0.1, a free port), so that
   * clients other than this process's `pg` (postgres.js, a child process, psql) join the test transaction.
   * @default false
   */
  endpoint?: boolean;
}

/** Per-test isolation for one test database, from {@link enableIsolation}. */
export interface Isolation extends AsyncDisposable {
  readonly target: SessionTarget;
  /** Where the wire endpoint listens, when enabled with `endpoint: true`. */
  readonly endpoint: EndpointAddress | undefined;
  /**
   * Starts a test; its first statement opens the test transaction. Every statement issued until
   * {@link rollback} belongs to it; tests begun while it runs join its transaction, rolled back when the
   * last of them ends.
   */
  begin(name?: string): Promise<void>;
  /** Ends the test: rolls its transaction back (cancelling a statement still running) and resets the session. */
  rollback(): Promise<void>;
  /**
   * Runs `fn` as one test, rolled back when it settles: the statements issued from `fn`'s asynchronous
   * context belong to it. Tests run this way may overlap: each then gets a connection of its own.
   */
  runTest<T>(name: string | undefined, fn: () => Promise<T>): Promise<T>;
  /** A new client bound to the test transaction, also in explicit mode. Connect it as usual. */
  client(): pg.Client;
  /** Rolls back, restores `pg`, closes the connection; returns what leaked, if leaks are detected. */
  close(): Promise<LeakReport | undefined>;
}

const active = new Set<Isolation>();

/**
 * Runs each test in a transaction rolled back when it ends. From now on the application's `pg` clients
 * for this database (directly or through Knex, Kysely, Drizzle, TypeORM, Sequelize, MikroORM, Prisma's pg
 * adapter) share one connection and behave as they would without the wrapper: see README-limits.md.
 *
 * @example
 * const isolation = await enableIsolation({ connectionString: process.env.TEST_DATABASE_URL });
 * beforeEach(() => isolation.begin());
 * afterEach(() => isolation.rollback());
 * afterAll(() => isolation.close());
 */
export async function enableIsolation(options: IsolationOptions): Promise<Isolation> {
  const {
    implicit = true,
    waitTimeoutMs = DEFAULT_WAIT_TIMEOUT_MS,
    maxConnections = DEFAULT_MAX_CONNECTIONS,
    detectLeaks = true,
    endpoint: serve = false,
    ...config
  } = options;
  const detector = detectLeaks ? await LeakDetector.start(config) : undefined;
  const session = new TestSession(config, waitTimeoutMs, maxConnections);
  // Registering checks pg's internals, the endpoint's included, before the endpoint borrows any of them.
  const unregister = registerSession(session, implicit);
  let endpoint: WireEndpoint | undefined;
  try {
    endpoint = serve ? await WireEndpoint.start(session, config) : undefined;
  } catch (error) {
    unregister();
    throw error;
  }
  if (endpoint) addSessionAddress(session, endpoint.address);
  let closing: Promise<LeakReport | undefined> | undefined;

  const isolation: Isolation = {
    target: session.target,
    endpoint: endpoint?.address,
    begin: (name) => session.begin(name),
    rollback: () => session.end(),
    runTest: (name, fn) => session.runTest(name, fn),
    client() {
      const client = new pg.Client(config);
      bindClient(client, session);
      return client;
    },
    close() {
      closing ??= (async () => {
        active.delete(isolation);
        try {
          await endpoint?.close();
          await session.close();
        } finally {
          unregister();
        }
        if (!detector) return undefined;
        const report = await detector.check();
        if (hasLeaks(report)) {
          if (typeof detectLeaks === 'function') detectLeaks(report);
          else console.warn(formatLeakReport(report));
        }
        return report;
      })();
      return closing;
    },
    async [Symbol.asyncDispose]() {
      await isolation.close();
    },
  };
  active.add(isolation);
  return isolation;
}

/** The one isolation enabled in this process, for helpers called without one. */
export function activeIsolation(): Isolation | undefined {
  return active.size === 1 ? active.values().next().value : undefined;
}
