import pg from 'pg';
import { IsolationError } from '../errors.js';
import { exemptFromIsolation } from './exemption.js';
import { clientInternals, destroySocket, forgetPreparedStatements } from './pg-internals.js';
import { TransactionStack } from './transaction-stack.js';

/** Where a session connects; used to decide which application clients it takes over. */
export interface SessionTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
}

interface QueuedJob {
  run: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** The test the job was queued in, or `undefined` outside tests. */
  test: number | undefined;
  timer?: NodeJS.Timeout;
}

/**
 * Session state a test may change that survives ROLLBACK: prepared statements, sequence state
 * (`currval`/`lastval`) and session advisory locks. Settings (`SET`), temporary tables and LISTEN made
 * inside the test transaction are undone by the ROLLBACK itself. `DISCARD ALL` is not used: it cannot run
 * in the same round trip as the ROLLBACK, and it would also undo what a `beforeAll` set up on purpose.
 */
const RESET_AFTER_ROLLBACK = 'DEALLOCATE ALL; DISCARD SEQUENCES; SELECT pg_advisory_unlock_all()';

/** How long to wait for the statement cancelled at the end of a test before dropping the connection. */
const CANCEL_GRACE_MS = 2_000;

/**
 * The one real connection a test file's application clients share. It runs their statements one at a
 * time (FIFO), opens the test transaction lazily with the first statement of a test, and rolls it back at
 * the end of the test. Outside tests (e.g. in `beforeAll`) statements run as they are, and commit.
 */
export class TestSession {
  readonly target: SessionTarget;
  readonly stack = new TransactionStack();
  private readonly config: pg.ClientConfig;
  private real: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly queue: QueuedJob[] = [];
  private running = false;
  private testNumber = 0;
  private inTestNumber: number | undefined;
  private begun = false;
  /** Set by {@link close}; clients routed here then fail rather than reopen the connection. */
  closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    config: pg.ClientConfig,
    /** How long a statement or a pool checkout may wait on the test's own work before failing. */
    readonly waitTimeoutMs: number,
  ) {
    this.config = config;
    const probe = new pg.Client(config);
    const params = clientInternals(probe).connectionParameters;
    this.target = { host: params.host, port: Number(params.port), database: params.database };
  }

  /** Whether a test is running (between {@link begin} and {@link end}). */
  get inTest(): boolean {
    return this.inTestNumber !== undefined;
  }

  /** The real connection, opened on first use and again after it was lost. */
  connection(): Promise<pg.Client> {
    if (this.closed) {
      return Promise.reject(
        new IsolationError(
          'not-enabled',
          'This client was taken over by pgtwin isolation, which has since been closed (after its test file). ' +
            'Create the client (or its pool) inside the test file that uses it, or keep isolation enabled.',
        ),
      );
    }
    if (this.real && isUsable(this.real)) return Promise.resolve(this.real);
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /**
   * Runs `job` once every job queued before it has finished, so statements of different virtual clients
   * never interleave. A job that waits longer than the wait timeout fails: what holds the connection is
   * then waiting on this job, a deadlock inside one test.
   */
  run<T>(job: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: QueuedJob = {
        run: job,
        resolve: resolve as (value: unknown) => void,
        reject,
        test: this.inTestNumber,
      };
      if (this.running || this.queue.length > 0) {
        entry.timer = setTimeout(() => {
          this.queue.splice(this.queue.indexOf(entry), 1);
          reject(
            new IsolationError(
              'connection-busy',
              `A statement waited ${this.waitTimeoutMs} ms for the test's database connection, which another ` +
                'statement of the same test still holds (often an open cursor or COPY stream, or an awaited ' +
                'query inside a callback of another). Without pgtwin they would use separate connections; ' +
                'inside a test they share one. Finish or close the first before awaiting the second, raise ' +
                '`waitTimeoutMs`, or opt this test out of isolation.',
            ),
          );
        }, this.waitTimeoutMs);
        entry.timer.unref();
      }
      this.queue.push(entry);
      this.pump();
    });
  }

  /** The real connection if it is open, to cancel what runs on it. */
  currentConnection(): pg.Client | undefined {
    return this.real;
  }

  /** The real connection's status from its last ReadyForQuery: 'I', 'T' or 'E'. */
  realTransactionStatus(): string | null {
    return this.real?.getTransactionStatus() ?? null;
  }

  /** Starts a test: its first statement will open the test transaction. */
  async begin(): Promise<void> {
    if (this.inTest) throw new Error('pgtwin internal error: begin() while a test is running');
    const real = this.real;
    if (real && isUsable(real) && real.getTransactionStatus() !== 'I') {
      throw new IsolationError(
        'transaction-left-open',
        'A transaction opened outside any test (in beforeAll or at module load) is still open, so the next ' +
          'test cannot start its own. Commit or roll it back before the tests run.',
      );
    }
    this.inTestNumber = ++this.testNumber;
  }

  /**
   * SQL to put before the first statement a test sends (`BEGIN; `), so opening the test transaction
   * costs no round trip of its own; empty afterwards.
   */
  beginPrefix(): string {
    if (this.begun) return '';
    this.begun = true;
    return 'BEGIN; ';
  }

  /**
   * Ends the test: fails statements still queued by it, cancels one still running, rolls the test
   * transaction back and resets session state that survives a rollback.
   */
  async end(): Promise<void> {
    if (!this.inTest) return;
    this.inTestNumber = undefined;
    for (const entry of this.queue.splice(0)) {
      clearTimeout(entry.timer);
      entry.reject(
        new IsolationError(
          'test-ended',
          'This statement was issued by a test that has ended; it was not run.',
        ),
      );
    }
    if (this.running) await this.cancelRunning();
    this.stack.reset();
    if (!this.begun) return;
    this.begun = false;
    const real = this.real;
    if (!real || !isUsable(real)) return;
    await real.query(`ROLLBACK; ${RESET_AFTER_ROLLBACK}`);
    // node-pg skips Parse for names it has seen on this connection; DEALLOCATE ALL dropped them all.
    forgetPreparedStatements(real);
  }

  /** Closes the real connection (after {@link end}). */
  async close(): Promise<void> {
    await this.end();
    this.closed = true;
    const real = this.real;
    this.real = undefined;
    if (real) await real.end().catch(() => undefined);
  }

  private async open(): Promise<pg.Client> {
    const client = exemptFromIsolation(new pg.Client(this.config));
    // The application's 'error' listeners are on its own clients; this one must not crash the process.
    client.on('error', () => undefined);
    await client.connect();
    this.real = client;
    this.begun = false;
    return client;
  }

  private pump(): void {
    if (this.running) return;
    const entry = this.queue.shift();
    if (!entry) return;
    clearTimeout(entry.timer);
    if (entry.test !== undefined && entry.test !== this.inTestNumber) {
      entry.reject(new IsolationError('test-ended', 'This statement was issued by a test that has ended.'));
      this.pump();
      return;
    }
    this.running = true;
    entry
      .run()
      .then(entry.resolve, entry.reject)
      .finally(() => {
        this.running = false;
        for (const waiter of this.idleWaiters.splice(0)) waiter();
        this.pump();
      });
  }

  /** Cancels what still runs on the connection (a timed-out test); drops the connection if that fails. */
  private async cancelRunning(): Promise<void> {
    const real = this.real;
    if (!real) return;
    const canceller = exemptFromIsolation(new pg.Client(this.config));
    try {
      await canceller.connect();
      await canceller.query('SELECT pg_cancel_backend($1)', [clientInternals(real).processID]);
    } catch {
      // Dropping the connection below ends the transaction just as well.
    } finally {
      await canceller.end().catch(() => undefined);
    }
    const idle = await new Promise<boolean>((resolve) => {
      if (!this.running) return resolve(true);
      const timer = setTimeout(() => resolve(false), CANCEL_GRACE_MS);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!idle) {
      // Something holds the connection for good (an unclosed cursor): the server rolls back on disconnect.
      this.real = undefined;
      this.begun = false;
      destroySocket(real);
    }
  }
}

function isUsable(client: pg.Client): boolean {
  const state = clientInternals(client);
  return !state._ending && state._queryable;
}
