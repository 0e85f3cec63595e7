import pg from 'pg';
import { IsolationError } from '../errors.js';
import { sendCancelRequest } from './cancel-request.js';
import { exemptFromIsolation } from './exemption.js';
import { clientInternals, destroySocket, forgetPreparedStatements } from './pg-internals.js';
import type { ClientSettings } from './client-settings.js';
import { SettingsSwitch } from './settings-switch.js';
import { forgetsPreparedStatements } from './statement-classifier.js';
import { TransactionGate } from './transaction-gate.js';
import { TransactionStack } from './transaction-stack.js';

/** One test while it runs: the connection its statements run on. */
export interface TestRun {
  /** Unique within the session; jobs carry it to tell a test's statements from a later test's. */
  readonly id: number;
  /** The test's name as the runner reports it, for error messages. */
  readonly name: string | undefined;
  readonly connection: SessionConnection;
}

interface QueuedJob {
  run: (real: pg.Client) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** The test the job was issued in, or `undefined` for a statement issued outside tests. */
  test: TestRun | undefined;
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
 * One real connection that application clients share: it runs their statements one at a time (FIFO), and
 * serves one test at a time, whose transaction it opens lazily with the test's first statement and rolls
 * back at the end of the test. Statements issued outside tests run as they are, and commit.
 */
export class SessionConnection {
  readonly stack = new TransactionStack();
  /** Keeps the connection's settings those of the client whose statement runs. */
  readonly settings = new SettingsSwitch();
  readonly gate: TransactionGate;
  private real: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly queue: QueuedJob[] = [];
  private running = false;
  /** While a test ends, no job starts: none may run inside the transaction being rolled back. */
  private ending = false;
  private begun = false;
  /** The test whose transaction went with a lost connection: its later statements fail saying so. */
  private lostBy: TestRun | undefined;
  private idleWaiters: Array<() => void> = [];
  /** The test this connection serves, between {@link beginTest} and {@link endTest}. */
  test: TestRun | undefined;
  /**
   * Counts the times the server forgot every prepared statement of the connection (`DEALLOCATE ALL` at the
   * end of a test or from a client, a new connection): endpoint clients' statements are prepared again when
   * next used.
   */
  preparedEpoch = 0;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly waitTimeoutMs: number,
    /** Fails when the session was closed, so that a client routed here does not reopen the connection. */
    private readonly checkOpen: () => void,
  ) {
    this.gate = new TransactionGate(waitTimeoutMs);
  }

  /** The real connection, opened on first use and again after it was lost. */
  connection(): Promise<pg.Client> {
    try {
      this.checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.real && isUsable(this.real)) return Promise.resolve(this.real);
    if (this.real && this.begun) this.lostBy = this.test;
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** The backend's cancel key, once connected. */
  backendKey(): { processID: number | null; secretKey: number | null } | undefined {
    if (!this.real) return undefined;
    const { processID, secretKey } = clientInternals(this.real);
    return { processID, secretKey };
  }

  /**
   * Runs `job` on the real connection once every job queued before it has finished, so statements of
   * different clients never interleave. `test` is the test the statement was issued in: a test's job that
   * comes up after its test ended is not run. A job that waits longer than the wait timeout fails: what
   * holds the connection is then waiting on this job, a deadlock inside one test.
   */
  run<T>(test: TestRun | undefined, job: (real: pg.Client) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: QueuedJob = { run: job, resolve: resolve as (value: unknown) => void, reject, test };
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
              { test: test?.name },
            ),
          );
        }, this.waitTimeoutMs);
        entry.timer.unref();
      }
      this.queue.push(entry);
      this.pump();
    });
  }

  /**
   * Notes that `text`, a statement of `client` (`undefined` outside tests), is about to run: the settings it
   * changes, and whether it makes the server forget every prepared statement of the connection, which all
   * its clients share (then node-pg and endpoint clients prepare theirs again).
   */
  noteStatement(client: ClientSettings | undefined, text: string, inTransaction = false): void {
    this.settings.note(client, text, inTransaction);
    if (forgetsPreparedStatements(text)) this.forgetPrepared();
  }

  /** Asks the server to cancel the statement running on the real connection (a wire client's CancelRequest). */
  cancelStatement(): Promise<void> {
    return this.real ? sendCancelRequest(this.real) : Promise.resolve();
  }

  /** The real connection's status from its last ReadyForQuery: 'I', 'T' or 'E'. */
  realTransactionStatus(): string | null {
    return this.real?.getTransactionStatus() ?? null;
  }

  /** Starts serving `test`: its first statement will open the test transaction. */
  beginTest(test: TestRun): void {
    if (this.test) throw new Error('pgtwin internal error: a connection was given a second test');
    this.test = test;
  }

  /**
   * The statement to put before the first statement a test sends (`BEGIN`), so opening the test transaction
   * costs no round trip of its own; none afterwards.
   */
  beginPrefix(): string[] {
    if (this.begun) return [];
    const status = this.realTransactionStatus();
    if (status !== null && status !== 'I') {
      throw new IsolationError(
        'transaction-left-open',
        'A transaction opened outside any test (in beforeAll or at module load) is still open, so this ' +
          'test cannot start its own. Commit or roll it back before the tests run.',
        { test: this.test?.name },
      );
    }
    this.begun = true;
    return ['BEGIN'];
  }

  /**
   * Ends the test: fails statements still queued by it, cancels one still running, rolls the test
   * transaction back and resets session state that survives a rollback. Statements queued from outside
   * tests stay queued, and run after the rollback.
   */
  async endTest(): Promise<void> {
    const test = this.test;
    if (!test) return;
    this.test = undefined;
    this.lostBy = undefined;
    this.ending = true;
    try {
      await this.rollBack(test);
    } finally {
      this.ending = false;
      this.pump();
    }
  }

  private async rollBack(test: TestRun): Promise<void> {
    this.gate.reset(test.name);
    for (const entry of this.queue.filter((queued) => queued.test !== undefined)) {
      this.queue.splice(this.queue.indexOf(entry), 1);
      clearTimeout(entry.timer);
      entry.reject(
        new IsolationError(
          'test-ended',
          'This statement was issued by a test that has ended; it was not run.',
          {
            test: test.name,
          },
        ),
      );
    }
    // A test that ends from inside a query's callback ends while that query's job finishes: let it.
    if (this.running) await new Promise((resolve) => setImmediate(resolve));
    if (this.running && this.begun) await this.cancelRunning();
    this.stack.reset();
    this.settings.endTest();
    if (!this.begun) return;
    this.begun = false;
    const real = this.real;
    if (!real || !isUsable(real)) return;
    await real.query(`ROLLBACK; ${RESET_AFTER_ROLLBACK}`);
    this.forgetPrepared();
  }

  /** The server forgot every prepared statement of the connection. */
  private forgetPrepared(): void {
    this.preparedEpoch++;
    // node-pg skips Parse for names it has seen on this connection.
    if (this.real) forgetPreparedStatements(this.real);
  }

  /** Closes the real connection (after {@link endTest}). */
  async close(): Promise<void> {
    await this.endTest();
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
    this.preparedEpoch++;
    this.settings.reconnected();
    return client;
  }

  private pump(): void {
    if (this.running || this.ending) return;
    const entry = this.queue.shift();
    if (!entry) return;
    clearTimeout(entry.timer);
    if (entry.test !== undefined && entry.test !== this.test) {
      entry.reject(
        new IsolationError('test-ended', 'This statement was issued by a test that has ended.', {
          test: entry.test.name,
        }),
      );
      this.pump();
      return;
    }
    this.running = true;
    this.connection()
      .then((real) => {
        // The test may have ended while the connection opened.
        if (entry.test !== undefined && entry.test !== this.test)
          throw new IsolationError('test-ended', 'This statement was issued by a test that has ended.', {
            test: entry.test.name,
          });
        if (entry.test !== undefined && entry.test === this.lostBy) throw connectionLost(entry.test);
        return entry.run(real);
      })
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
    // If it fails, dropping the connection below ends the transaction just as well.
    await sendCancelRequest(real);
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

function connectionLost(test: TestRun): IsolationError {
  return new IsolationError(
    'connection-lost',
    `The database connection of test "${test.name ?? '?'}" was lost during the test (the server ended it, ` +
      'or the network failed), and its transaction with it: what the test wrote before is gone. Its later ' +
      'statements fail rather than run outside that transaction; the next test gets a new connection. A ' +
      'test that ends connections on purpose (pg_terminate_backend) must opt out of isolation.',
    { test: test.name },
  );
}

function isUsable(client: pg.Client): boolean {
  const state = clientInternals(client);
  return !state._ending && state._queryable;
}
