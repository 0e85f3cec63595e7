import pg from 'pg';
import { IsolationError } from '../errors.js';
import { clientInternals } from './pg-internals.js';
import { SessionConnection, type TestRun } from './session-connection.js';
import { currentTestScope, runInTestScope } from './test-scope.js';

/** Where a session connects; used to decide which application clients it takes over. */
export interface SessionTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
}

/** Where one statement runs: a connection, and the test it belongs to (none outside tests). */
export interface Route {
  readonly connection: SessionConnection;
  readonly test: TestRun | undefined;
}

/**
 * The real connections a test file's application clients share. Tests run one at a time on the first
 * connection, which also runs what is issued outside tests (and commits it); each test that runs while
 * others do (a concurrent test) gets a connection of its own, up to `maxConnections`. A statement belongs to
 * the test whose asynchronous context issued it ({@link runTest}), else to the one test running, else to
 * no test.
 */
export class TestSession {
  readonly target: SessionTarget;
  private readonly main: SessionConnection;
  /** Every connection opened, the main one first. */
  private readonly connections: SessionConnection[] = [];
  private readonly running = new Set<TestRun>();
  private counter = 0;
  /** The test {@link begin} started, and how many begun tests share it. */
  private shared: { test: TestRun; joined: number } | undefined;
  /** Set by {@link close}; clients routed here then fail rather than reopen a connection. */
  closed = false;

  constructor(
    private readonly config: pg.ClientConfig,
    /** How long a statement or a pool checkout may wait on the test's own work before failing. */
    readonly waitTimeoutMs: number,
    /** Most real connections the session holds at once (concurrent tests each need one). */
    readonly maxConnections: number,
  ) {
    const probe = new pg.Client(config);
    const params = clientInternals(probe).connectionParameters;
    this.target = { host: params.host, port: Number(params.port), database: params.database };
    this.main = this.addConnection();
  }

  /** Whether a test is running. */
  get inTest(): boolean {
    return this.running.size > 0;
  }

  /**
   * Starts a test on the main connection, without a context of its own (Jest's `beforeEach`): every
   * statement issued until {@link end} belongs to it. Tests begun while one runs (concurrent tests of a
   * runner without per-test contexts) join its transaction, which the last {@link end} rolls back.
   */
  async begin(name?: string): Promise<void> {
    if (this.shared) {
      this.shared.joined += 1;
      return;
    }
    if (this.running.size > 0) throw new Error('pgtwin internal error: begin() while runTest() runs');
    this.shared = { test: this.start(this.main, name), joined: 1 };
  }

  /** Ends a test started with {@link begin}: rolls it back, once every test that joined it ended. */
  async end(): Promise<void> {
    if (!this.shared || --this.shared.joined > 0) return;
    const { test } = this.shared;
    this.shared = undefined;
    await this.finish(test);
  }

  /**
   * Runs `fn` as one test in an asynchronous context of its own (Vitest's `aroundEach`), on the main
   * connection when it is free, else on a connection of its own; rolled back when `fn` settles.
   */
  async runTest<T>(name: string | undefined, fn: () => Promise<T>): Promise<T> {
    const test = this.start(this.freeConnection(name), name);
    try {
      return await runInTestScope(test, fn);
    } finally {
      await this.finish(test);
    }
  }

  /**
   * Where a statement issued now runs: in the test whose context issued it; else, when one test runs, in
   * that one (a callback that lost its context, Jest's tests); else outside tests, on the main connection.
   */
  route(): Route {
    const scoped = currentTestScope();
    if (scoped && this.connections.includes(scoped.connection))
      return { connection: scoped.connection, test: scoped };
    if (this.running.size === 0) return { connection: this.main, test: undefined };
    if (this.running.size === 1) {
      const [test] = [...this.running];
      return { connection: test!.connection, test };
    }
    throw new IsolationError(
      'ambiguous-test',
      `A statement was issued outside the asynchronous context of any of the ${this.running.size} tests ` +
        `running at once (${[...this.running].map((test) => `"${test.name ?? '?'}"`).join(', ')}), so ` +
        'pgtwin cannot tell whose transaction it belongs to. It usually comes from a callback queued by one ' +
        'test and called from another (a hand-written pool or queue): issue it from the test itself, ' +
        'or run these tests one after another.',
    );
  }

  /** Ends every test and closes the connections. */
  async close(): Promise<void> {
    this.shared = undefined;
    for (const test of [...this.running]) await this.finish(test);
    this.closed = true;
    await Promise.all(this.connections.map((connection) => connection.close()));
  }

  private start(connection: SessionConnection, name: string | undefined): TestRun {
    const test: TestRun = { id: ++this.counter, name, connection };
    connection.beginTest(test);
    this.running.add(test);
    return test;
  }

  private async finish(test: TestRun): Promise<void> {
    this.running.delete(test);
    await test.connection.endTest();
  }

  private freeConnection(name: string | undefined): SessionConnection {
    const free = this.connections.find((connection) => connection.test === undefined);
    if (free) return free;
    if (this.connections.length < this.maxConnections) return this.addConnection();
    throw new IsolationError(
      'too-many-connections',
      `Test "${name ?? '?'}" needs a database connection of its own, but the ${this.maxConnections} ` +
        'connections pgtwin may open in this worker (isolation.maxConnections) already serve tests ' +
        'running at once. Raise isolation.maxConnections, or lower how many tests run concurrently ' +
        "(Vitest's maxConcurrency).",
      { test: name },
    );
  }

  private addConnection(): SessionConnection {
    const connection = new SessionConnection(this.config, this.waitTimeoutMs, () => this.checkOpen());
    this.connections.push(connection);
    return connection;
  }

  private checkOpen(): void {
    if (!this.closed) return;
    throw new IsolationError(
      'not-enabled',
      'This client was taken over by pgtwin isolation, which has since been closed (after its test file). ' +
        'Create the client (or its pool) inside the test file that uses it, or keep isolation enabled.',
    );
  }
}
