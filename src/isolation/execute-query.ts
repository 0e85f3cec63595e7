import { AsyncResource } from 'node:async_hooks';
import type { EventEmitter } from 'node:events';
import type pg from 'pg';
import { IsolationError } from '../errors.js';
import { sendCancelRequest } from './cancel-request.js';
import { settingsOf } from './client-settings.js';
import { commandResult } from './pg-internals.js';
import { serverError, serverWarning } from './server-messages.js';
import {
  classifyStatement,
  mayContainTransactionControl,
  type StatementClass,
} from './statement-classifier.js';
import type { SessionConnection, TestRun } from './session-connection.js';
import { CAPTURE_COLUMN, type CaptureRow, type SettingsPlan } from './settings-switch.js';
import { splitSql } from './sql-splitter.js';
import type { TestSession } from './test-session.js';

/** A node-pg Submittable: an object with `submit` that drives the protocol itself (cursors, COPY, `pg.Query`). */
export interface Submittable {
  submit(connection: unknown): unknown;
  text?: string;
  callback?: unknown;
  handleReadyForQuery(connection: unknown): void;
  handleError(error: Error, connection: unknown): void;
}

/** One `client.query(...)` call of the application, normalized. */
export interface QueryRequest {
  /** What to pass to node-pg's `query` on the real connection: a query config or a submittable. */
  readonly query: pg.QueryConfig | Submittable;
  readonly text: string;
  /** Whether it travels over the simple protocol, where one string may hold several statements. */
  readonly simple: boolean;
  readonly rowMode: string | undefined;
}

type Results = pg.QueryResult | pg.QueryResult[] | undefined;

/**
 * Deferred constraints are checked when the application commits, as the server would: in a savepoint
 * that is rolled back afterwards, so the constraints' deferred mode is restored for the rest of the test.
 */
const CHECK_DEFERRED_CONSTRAINTS =
  'SAVEPOINT pgtwin_check; SET CONSTRAINTS ALL IMMEDIATE; ROLLBACK TO SAVEPOINT pgtwin_check; ' +
  'RELEASE SAVEPOINT pgtwin_check';

/**
 * `DISCARD ALL` (the pool reset of slonik and others) cannot run in a transaction block; its parts can.
 * `DEALLOCATE ALL` is left out: the session's prepared statements belong to every client sharing it, and the
 * session drops them when the test ends.
 */
const DISCARD_ALL =
  'CLOSE ALL; RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD SEQUENCES; DISCARD TEMP';

/**
 * Runs an application's query on the session's connection so that it behaves as it would on a connection
 * of its own: outside an application transaction each statement gets a savepoint (autocommit), and
 * transaction control is mapped onto savepoints of the test transaction.
 */
export async function executeQuery(
  session: TestSession,
  client: EventEmitter,
  request: QueryRequest,
  /** Aborted when the client ends: a statement not yet run is dropped, a running one cancelled. */
  signal?: AbortSignal,
): Promise<Results> {
  const { connection, test } = session.route();
  // The shared connection's socket belongs to whichever test opened it: what the server's messages call
  // back (a pg.Query's events, 'notice') must run in the context of the code that issued the query instead.
  const inCaller = AsyncResource.bind((fn: () => unknown) => fn());
  if (isSubmittable(request.query)) callerContexts.set(request.query, inCaller);
  if (!test)
    return connection.run(undefined, (real) =>
      asClient(real, client, signal, inCaller, () => runOutside(connection, real, request)),
    );
  const { stack, gate } = connection;
  // Another client's transaction on this connection must end before this one's begins: see TransactionGate.
  if (opensTransaction(request) && !stack.inTransaction(client)) await gate.enter(client, test.name);
  try {
    return await connection.run(test, (real) =>
      asClient(real, client, signal, inCaller, () =>
        executeInJob({ connection, test, real, client }, request),
      ),
    );
  } finally {
    if (connection.test === test && !stack.inTransaction(client)) gate.leave(client);
  }
}

/**
 * Runs `job` on the shared connection as `client`'s own connection would: the server's notices reach the
 * client's 'notice' event, and when `signal` aborts (the client ended) its running statement is cancelled.
 * The job ends only once a cancel request has reached the server, so that it cannot hit a later statement.
 */
async function asClient<T>(
  real: pg.Client,
  client: EventEmitter,
  signal: AbortSignal | undefined,
  inCaller: CallerContext,
  job: () => Promise<T>,
): Promise<T> {
  signal?.throwIfAborted();
  const notice = (message: unknown) => inCaller(() => client.emit('notice', message));
  let cancelled: Promise<void> | undefined;
  const cancel = () => (cancelled = sendCancelRequest(real));
  real.on('notice', notice);
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    return await job();
  } finally {
    real.removeListener('notice', notice);
    signal?.removeEventListener('abort', cancel);
    await cancelled;
  }
}

/** Where {@link executeInJob} runs: a test's connection, lent to the caller by {@link SessionConnection.run}. */
export interface JobContext {
  readonly connection: SessionConnection;
  readonly test: TestRun;
  readonly real: pg.Client;
  /** The application's client; it owns its transactions on the connection's stack. */
  readonly client: EventEmitter;
}

/** A {@link JobContext} with the settings switch still to send before the job's first SQL. */
interface StatementContext extends JobContext {
  plan: SettingsPlan | undefined;
}

/**
 * {@link executeQuery} for a caller already running a job on the test's connection (the wire endpoint),
 * which has also entered the connection's {@link TransactionGate} when {@link opensTransaction}.
 */
export async function executeInJob(job: JobContext, request: QueryRequest): Promise<Results> {
  const context = switchSettings(job);
  const settings = settingsOf(job.client);
  const { connection, real } = job;
  const statements = statementsOf(request);
  const classes = statements.map(classifyStatement);
  let results: Results;
  try {
    results =
      statements.length > 1 && classes.some((statement) => statement.kind !== 'other')
        ? await runScript(context, request, statements, classes)
        : await runStatement(context, request, classes[0]!);
  } catch (error) {
    // A failed RESET changed nothing.
    settings.reapply.clear();
    throw error;
  }
  const after = connection.settings.after(settings);
  if (after !== '' && real.getTransactionStatus() !== 'E') await control(context, after);
  return results;
}

/** The job's context, with the switch to its client's settings that its first SQL must carry. */
function switchSettings(job: JobContext): StatementContext {
  const { connection, real, test } = job;
  const aborted = real.getTransactionStatus() === 'E';
  const plan = connection.settings.enter(
    settingsOf(job.client),
    test.id,
    connection.stack.rollbacks,
    aborted,
  );
  return { ...job, plan };
}

/**
 * A statement outside tests, as it is. A `SET` among them changes the connection's own settings, which are
 * read back so that each test's clients find them again (see SettingsSwitch).
 */
async function runOutside(connection: SessionConnection, real: pg.Client, request: QueryRequest) {
  connection.noteStatement(undefined, request.text);
  const result = await send(real, request.query);
  const capture = connection.settings.outsideCapture();
  if (capture && real.getTransactionStatus() !== 'E')
    await real.query(capture.sql).then(
      (read) => capture.absorb(captureRows(read)),
      () => undefined,
    );
  return result;
}

/** Whether `request` begins an application transaction, so it must hold the connection's gate first. */
export function opensTransaction(request: Pick<QueryRequest, 'text' | 'simple'>): boolean {
  return statementsOf(request).some((statement) => classifyStatement(statement).kind === 'begin');
}

/** Whether `text` holds transaction control (or DISCARD ALL) that pgtwin answers itself inside a test. */
export function holdsTransactionControl(text: string): boolean {
  if (classifyStatement(text).kind !== 'other') return true;
  if (!mayContainTransactionControl(text)) return false;
  return splitSql(text).some((statement) => classifyStatement(statement).kind !== 'other');
}

function statementsOf(request: Pick<QueryRequest, 'text' | 'simple'>): string[] {
  return request.simple && mayContainTransactionControl(request.text)
    ? splitSql(request.text)
    : [request.text];
}

async function runStatement(
  context: StatementContext,
  request: QueryRequest,
  statement: StatementClass,
): Promise<Results> {
  const { connection, real, client } = context;
  const { stack } = connection;
  const inTransaction = stack.inTransaction(client);
  connection.noteStatement(settingsOf(client), request.text, inTransaction);
  const done = (command: string) => commandResult(command, request.rowMode);
  switch (statement.kind) {
    case 'begin':
      if (inTransaction)
        return warn(client, '25001', 'there is already a transaction in progress', done('BEGIN'));
      await control(
        context,
        stack.push(client, 'transaction'),
        statement.readOnly ? 'SET TRANSACTION READ ONLY' : '',
        connection.settings.beginTransaction(settingsOf(client)),
      );
      return done('BEGIN');
    case 'commit':
      if (!inTransaction) return warn(client, '25P01', 'there is no transaction in progress', done('COMMIT'));
      return done(await commit(context, statement.chain));
    case 'rollback':
      if (!inTransaction)
        return warn(client, '25P01', 'there is no transaction in progress', done('ROLLBACK'));
      await rollbackTransaction(context, () => (statement.chain ? stack.push(client, 'transaction') : ''));
      return done('ROLLBACK');
    case 'savepoint':
      if (!inTransaction) throw serverError('25P01', 'SAVEPOINT can only be used in transaction blocks');
      await control(context, stack.push(client, 'savepoint', statement.name));
      return done('SAVEPOINT');
    case 'release': {
      if (!inTransaction)
        throw serverError('25P01', 'RELEASE SAVEPOINT can only be used in transaction blocks');
      const sql = stack.release(client, statement.name);
      // An unknown savepoint: the server raises the same error, and aborts the transaction, as it would.
      if (sql === undefined) return sendOwn(context, request);
      await control(context, sql);
      return done('RELEASE');
    }
    case 'rollback-to': {
      if (!inTransaction)
        throw serverError('25P01', 'ROLLBACK TO SAVEPOINT can only be used in transaction blocks');
      const undoesOthers = stack.rollbackUndoesOthers(client, statement.name);
      const aborted = real.getTransactionStatus() === 'E';
      if (undoesOthers && !aborted) throw interleavedRollback(context, 'unchanged');
      const sql = stack.rollbackTo(client, statement.name);
      if (sql === undefined) return sendOwn(context, request);
      await control(context, sql);
      if (undoesOthers) throw interleavedRollback(context, 'undone');
      return done('ROLLBACK');
    }
    case 'set-transaction':
      // Isolation level and DEFERRABLE cannot change in a subtransaction; the test transaction's apply.
      if (!inTransaction)
        return warn(client, '25P01', 'SET TRANSACTION can only be used in transaction blocks', done('SET'));
      if (statement.readOnly) await control(context, 'SET TRANSACTION READ ONLY');
      return done('SET');
    case 'discard-all':
      // Inside an application transaction the server refuses it, and so does the emulation.
      if (inTransaction) return sendOwn(context, request);
      await autocommit(context, { ...request, query: { text: DISCARD_ALL }, simple: true });
      return done('DISCARD ALL');
    case 'two-phase':
      throw new IsolationError(
        'unsupported-statement',
        `${statement.command} cannot run inside a test: two-phase commit would make the test's writes ` +
          'outlive its transaction. Opt this test out of isolation.',
      );
    case 'other': {
      const result = await (inTransaction ? sendOwn(context, request) : autocommit(context, request));
      if (writes(result)) stack.noteWrite(client);
      return result;
    }
  }
}

/** Commits the client's transaction; returns the command tag, `ROLLBACK` when it was aborted. */
async function commit(context: JobContext, chain: boolean): Promise<string> {
  const { connection, real, client } = context;
  const { stack } = connection;
  const reopen = () => (chain ? stack.push(client, 'transaction') : '');
  if (real.getTransactionStatus() === 'E') {
    await rollbackTransaction(context, reopen);
    return 'ROLLBACK';
  }
  const before = stack.snapshot();
  try {
    const restore = connection.settings.commitTransaction(settingsOf(client));
    await control(context, CHECK_DEFERRED_CONSTRAINTS, stack.commit(client), restore, reopen());
  } catch (error) {
    // As on the server, a COMMIT that fails (a deferred constraint) rolls the transaction back.
    stack.restore(before);
    await rollbackTransaction(context);
    throw error;
  }
  return 'COMMIT';
}

/**
 * Rolls back the client's transaction, unless that would also undo another client's writes (made while it
 * was open, on the connection they share). Then the transaction ends with its writes kept, as if committed,
 * and the ROLLBACK fails saying so; only a transaction that failed (aborted, so nothing can run in it) is
 * rolled back all the same, with the other client's writes inside it.
 */
async function rollbackTransaction(context: JobContext, reopen: () => string = () => ''): Promise<void> {
  const { connection, real, client } = context;
  const { stack } = connection;
  connection.settings.endTransaction(settingsOf(client));
  if (!stack.rollbackUndoesOthers(client)) return control(context, stack.rollback(client), reopen());
  const aborted = real.getTransactionStatus() === 'E';
  await control(context, aborted ? stack.rollback(client) : stack.commit(client));
  throw interleavedRollback(context, aborted ? 'undone' : 'kept');
}

function interleavedRollback(context: JobContext, outcome: 'kept' | 'undone' | 'unchanged'): IsolationError {
  const name = context.test.name;
  const what = {
    kept: 'Its writes were kept (the transaction ended as if committed) and are rolled back with the test.',
    undone:
      'It had failed, so it was rolled back all the same, together with the other connection’s writes ' +
      'made while it was open.',
    unchanged: 'Nothing was rolled back: the transaction goes on from where it was.',
  }[outcome];
  return new IsolationError(
    'interleaved-rollback',
    `A connection ${name ? `in test "${name}" ` : ''}rolled back, but another connection of the same test ` +
      'wrote while its transaction was open. Without pgtwin these are separate connections; inside the ' +
      `test they share one transaction, so the rollback cannot undo only its own work. ${what} Let the ` +
      'transaction end before the other connection writes, or give this test a real database with ' +
      'pgtwin.isolation(false).',
    { test: name },
  );
}

/** A statement outside any application transaction: a savepoint makes its failure undo only itself. */
async function autocommit(context: StatementContext, request: QueryRequest): Promise<Results> {
  const { connection, real } = context;
  await control(context, connection.stack.beginStatement().join('; '));
  try {
    return await send(real, request.query);
  } catch (error) {
    await real.query(connection.stack.failStatement()).catch(() => undefined);
    throw explainTransactionBlockError(error);
  }
}

/**
 * A multi-statement string with transaction control. As on the server, statements outside an explicit
 * transaction form one implicit transaction that commits at the end (or at a COMMIT) and rolls back on
 * error; an explicit transaction left open stays open.
 */
async function runScript(
  context: StatementContext,
  request: QueryRequest,
  statements: string[],
  classes: StatementClass[],
): Promise<Results> {
  const { stack } = context.connection;
  const { client } = context;
  const results: pg.QueryResult[] = [];
  let implicit = false;
  try {
    for (const [i, text] of statements.entries()) {
      const statement = classes[i]!;
      if (statement.kind === 'begin' && implicit) {
        implicit = false;
        results.push(commandResult('BEGIN', request.rowMode));
        continue;
      }
      if (statement.kind === 'other' && !stack.inTransaction(client)) {
        const settings = context.connection.settings.beginTransaction(settingsOf(client));
        await control(context, stack.push(client, 'transaction'), settings);
        implicit = true;
      }
      const piece: QueryRequest = { ...request, text, query: { ...(request.query as pg.QueryConfig), text } };
      const result = await runStatement(context, piece, statement);
      if (statement.kind === 'commit' || statement.kind === 'rollback') implicit = false;
      if (result) results.push(...(Array.isArray(result) ? result : [result]));
    }
    if (implicit) await commit(context, false);
  } catch (error) {
    if (implicit && stack.inTransaction(client)) await rollbackTransaction(context).catch(() => undefined);
    throw error;
  }
  return results;
}

/**
 * Sends pgtwin's own SQL (savepoints), opening the test transaction first if this is the test's first, and
 * after the client's settings if they are still to be switched in.
 */
async function control(
  context: JobContext,
  ...parts: Array<string | SettingsPlan | undefined>
): Promise<void> {
  const { plan } = context as Partial<StatementContext>;
  if (plan) (context as StatementContext).plan = undefined;
  const plans = [plan, ...parts].filter((part): part is SettingsPlan => typeof part === 'object');
  const sql = [plan, ...parts]
    .map((part) => (typeof part === 'object' ? part.sql : (part ?? '')))
    .filter((part) => part !== '')
    .join('; ');
  if (sql === '') return;
  let results: pg.QueryResult | pg.QueryResult[];
  try {
    results = await context.real.query([...context.connection.beginPrefix(), sql].join('; '));
  } catch (error) {
    if (plan) context.connection.settings.lost();
    throw error;
  }
  const rows = captureRows(results);
  for (const each of plans) each.absorb(rows);
}

/** Sends the application's statement as it is, after the client's settings. */
async function sendOwn(context: StatementContext, request: QueryRequest): Promise<Results> {
  await control(context);
  return send(context.real, request.query);
}

/** The rows settings captures returned among `results`. */
function captureRows(results: pg.QueryResult | pg.QueryResult[]): CaptureRow[] {
  return (Array.isArray(results) ? results : [results])
    .filter((result) => result.fields[0]?.name === CAPTURE_COLUMN)
    .flatMap((result) =>
      result.rows.map((row: Record<string, string | null>): CaptureRow => [
        row[CAPTURE_COLUMN]!,
        row.value ?? null,
        row.whose!,
      ]),
    );
}

async function send(real: pg.Client, query: pg.QueryConfig | Submittable): Promise<Results> {
  try {
    if (typeof (query as Submittable).submit === 'function')
      return await runSubmittable(real, query as Submittable);
    return await real.query(query as pg.QueryConfig);
  } catch (error) {
    // node-pg gave up waiting (query_timeout), but the statement still runs on the connection every client
    // of the test shares: cancel it, as a connection of its own would not hold up the others.
    if ((error as Error).message === QUERY_READ_TIMEOUT) await sendCancelRequest(real);
    throw error;
  }
}

/** node-pg's error when a query's `query_timeout` expires. */
export const QUERY_READ_TIMEOUT = 'Query read timeout';

/**
 * Runs a submittable and resolves when its protocol exchange is over (ReadyForQuery, or an error): a
 * cursor holds the connection until it is closed. Its results reach the application through its own
 * callback and events. An application handler that throws (a callback, a 'row' listener) throws
 * asynchronously, as an uncaught exception, as it would on a connection of its own: thrown into the shared
 * connection's parser, it would lose the server's next messages and wedge every client of the test.
 */
function runSubmittable(real: pg.Client, submittable: Submittable): Promise<undefined> {
  submitted.add(submittable);
  return new Promise((resolve, reject) => {
    const target = submittable as unknown as Record<string, unknown>;
    for (const key of handlerNames(submittable)) {
      const handler = target[key] as (...args: unknown[]) => unknown;
      if (key === 'handleError') originalHandleError.set(submittable, handler as Submittable['handleError']);
      const inCaller = callerContexts.get(submittable) ?? ((fn) => fn());
      target[key] = function (this: unknown, ...args: unknown[]) {
        try {
          if (!detached.has(submittable)) return inCaller(() => handler.apply(this, args));
        } catch (thrown) {
          process.nextTick(() => {
            throw thrown;
          });
        } finally {
          if (key === 'handleReadyForQuery') resolve(undefined);
          if (key === 'handleError') reject(args[0]);
        }
      };
    }
    real.query(submittable as unknown as pg.QueryConfig);
  });
}

/** The methods node-pg calls on a submittable with the server's messages (`handleDataRow`, ...). */
function handlerNames(submittable: Submittable): string[] {
  const names = new Set<string>();
  for (
    let object: object | null = submittable;
    object && object !== Object.prototype;
    object = Object.getPrototypeOf(object) as object | null
  )
    for (const name of Object.getOwnPropertyNames(object))
      if (
        name.startsWith('handle') &&
        typeof (submittable as unknown as Record<string, unknown>)[name] === 'function'
      )
        names.add(name);
  return [...names];
}

const submitted = new WeakSet<Submittable>();
type CallerContext = (fn: () => unknown) => unknown;
const callerContexts = new WeakMap<Submittable, CallerContext>();

function isSubmittable(query: QueryRequest['query']): query is Submittable {
  return typeof (query as Submittable).submit === 'function';
}
const detached = new WeakSet<Submittable>();
const originalHandleError = new WeakMap<Submittable, Submittable['handleError']>();

/**
 * Fails `submittable` with `error` (its client ended) and stops passing the server's messages on to it, as
 * a closed socket would.
 */
export function abandonSubmittable(submittable: Submittable, error: Error, connection: unknown): void {
  detached.add(submittable);
  (originalHandleError.get(submittable) ?? submittable.handleError).call(submittable, error, connection);
}

/** Whether `submittable` reached the connection, so that its own handlers already saw any error. */
export function wasSubmitted(submittable: Submittable): boolean {
  return submitted.has(submittable);
}

/** Rolls back what `client` left open when it ends, as the server does when a connection closes. */
export async function abandonTransaction(session: TestSession, client: EventEmitter): Promise<void> {
  const { connection, test } = session.route();
  if (!test || !connection.stack.inTransaction(client)) return;
  await connection
    .run(test, async (real) => {
      if (connection.stack.inTransaction(client))
        await rollbackTransaction(switchSettings({ connection, test, real, client }));
    })
    .finally(() => connection.gate.leave(client));
}

/** Whether a statement may have written: anything but a plain SELECT (a submittable may be COPY FROM). */
function writes(result: Results): boolean {
  const results = Array.isArray(result) ? result : [result];
  return results.some((one) => one?.command !== 'SELECT' && one?.command !== 'SHOW');
}

function warn(client: EventEmitter, code: string, message: string, result: pg.QueryResult): pg.QueryResult {
  client.emit('notice', serverWarning(code, message));
  return result;
}

/** "cannot run inside a transaction block" would puzzle an application that opened no transaction. */
function explainTransactionBlockError(error: unknown): unknown {
  const { code, message } = error as { code?: string; message?: string };
  if (code !== '25001') return error;
  return new IsolationError(
    'unsupported-statement',
    `The server refused a statement with "${message}". Every test runs inside a transaction, so ` +
      'statements that cannot (VACUUM, CREATE DATABASE, CREATE INDEX CONCURRENTLY, ...) fail ' +
      'there. Run them in global setup or opt this test out of isolation.',
    { cause: error },
  );
}
