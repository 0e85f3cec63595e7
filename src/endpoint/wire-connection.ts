import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import type pg from 'pg';
import { IsolationError } from '../errors.js';
import { attachSettings, ClientSettings } from '../isolation/client-settings.js';
import {
  abandonTransaction,
  executeInJob,
  holdsTransactionControl,
  opensTransaction,
} from '../isolation/execute-query.js';
import {
  CAPTURE_COLUMN,
  checkStartupSettings,
  type CaptureRow,
  type SettingsPlan,
} from '../isolation/settings-switch.js';
import { classifyStatement } from '../isolation/statement-classifier.js';
import type { SessionConnection } from '../isolation/session-connection.js';
import type { Route, TestSession } from '../isolation/test-session.js';
import {
  authenticationOk,
  authenticationSasl,
  authenticationSaslContinue,
  authenticationSaslFinal,
  backendKeyData,
  commandComplete,
  dataRow,
  errorResponse,
  noticeResponse,
  parameterStatus,
  readyForQuery,
  reportFields,
  rowDescription,
} from './backend-messages.js';
import { batchedEnd, batchedWrite } from './batched-write.js';
import { CStringCursor, encodeFrame, FrameReader, type Frame } from './frame-reader.js';
import { RawChannel } from './raw-channel.js';
import { StatementNames } from './statement-names.js';
import { SCRAM_MECHANISM, ScramFailure, type ScramExchange, type ScramVerifier } from './scram-verifier.js';

/** What a wire connection needs from its endpoint. */
export interface EndpointContext {
  readonly session: TestSession;
  readonly database: string;
  readonly user: string;
  /** The test role's password keys; clients must prove they know it (SCRAM-SHA-256) when it is set. */
  readonly verifier: ScramVerifier | undefined;
  /** The server's ParameterStatus values, sent to each client after authentication. */
  serverParameters(): Promise<Record<string, string>>;
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;
/** The startup code of a CancelRequest (also sent by the endpoint to the real server). */
export const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;

/** Server messages that end the response to each kind of client message (`Z`: ReadyForQuery). */
const ENDS: Record<string, string> = { P: '1', B: '2', D: 'Tn', E: 'CIs', C: '3', S: 'Z', Q: 'Z', F: 'Z' };

/** Client messages that do nothing between exchanges. */
const IDLE_NOOPS = ['d', 'c', 'f', 'H'];

/** One message sent to the server whose response has not ended yet. */
interface Expectation {
  readonly ends: string;
  /** pgtwin's own message: its response never reaches the client (errors and ParameterStatus excepted). */
  readonly own: boolean;
  /** pgtwin's own message that a client's cancel request may interrupt (see {@link WireConnection.cancel}). */
  readonly interruptible?: boolean;
  readonly onEnd?: (frame: Frame) => void;
  /** Sees each server message of the response, its end included. */
  readonly onFrame?: (frame: Frame) => void;
  /** Called when the server skips or fails the message instead. */
  readonly onSkip?: () => void;
}

/** Text results for statements pgtwin answers itself, so they can be re-encoded exactly. */
const RAW_TEXT: pg.CustomTypesConfig = {
  getTypeParser: (() => (value: string) => value) as unknown as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * One client of the endpoint. After startup, its messages are grouped into exchanges (up to a Sync or a
 * simple Query, plus the COPY data and flushed messages that belong to them); each exchange runs as one job
 * on the test session, forwarded as raw bytes to the session's connection. Inside a test the client is an
 * application client of the session's transaction stack: an exchange outside its own transaction runs in the
 * statement savepoint (sent in the same write, so a successful exchange costs no round trip), and its
 * transaction control is answered by the same emulation as in-process `pg` clients.
 */
export class WireConnection {
  /** The client's identity on the session's transaction stack; emulation warnings arrive as 'notice'. */
  private readonly identity = new EventEmitter();
  /** Its session settings: startup parameters, and its own SETs in the current test. */
  private settings = new ClientSettings();
  readonly processId = randomBytes(4).readInt32BE() & 0x7fffffff;
  readonly secretKey = randomBytes(4).readInt32BE();
  private readonly names = new StatementNames(`pgtwin_${this.processId.toString(36)}_`);
  private readonly reader = new FrameReader();
  /** Bytes of the startup phase (untyped messages); `undefined` once the client is authenticated. */
  private startupBuffer: Buffer | undefined = Buffer.alloc(0);
  /** Set while the client authenticates. */
  private scram: ScramExchange | undefined;
  private readonly incoming: Frame[] = [];
  private wakers: Array<() => void> = [];
  private closed = false;
  /** Statement text by statement name and by portal name, to recognise transaction control. */
  private readonly statements = new Map<string, string>();
  private readonly portals = new Map<string, string>();
  /** Where the current (or last) exchange runs: the connection and test {@link TestSession.route} gave it. */
  private route: Route | undefined;
  /** Set while an exchange holds the route's connection. */
  private channel: RawChannel | undefined;
  private channelFailure: Error | undefined;
  private plan: Expectation[] = [];
  private copying = false;
  /** The server reported an error in this exchange, so it skips the client's messages up to the Sync. */
  private failed = false;
  /** The endpoint drops the client's messages up to the Sync (the server no longer skips them). */
  private dropping = false;
  /** The exchange's Sync or Query was taken from the client. */
  private syncTaken = false;
  /**
   * A COPY FROM STDIN started by an Execute after the exchange's Sync was sent: the server ignored that Sync
   * (as it ignores any during COPY), so the client's next Sync is the one it answers.
   */
  private owedSync = false;
  /** The exchange ends with a Sync (extended protocol), not a simple Query. */
  private endsWithSync = false;
  /** ErrorResponses that go to the client with the next message sent to it (see {@link fromServer}). */
  private readonly heldErrors: Buffer[] = [];
  /** Between the first message of an exchange and its ReadyForQuery. */
  private exchanging = false;
  /** The client asked to cancel, and the request waits until its statement runs (see {@link cancel}). */
  private cancelWanted = false;
  /** The last cancel request sent to the server for this exchange (taken once it resolves). */
  private cancelling: Promise<void> | undefined;
  /** Ends the {@link keepCancelling} loop of an earlier request when it changes. */
  private cancelRound = 0;

  constructor(
    private readonly socket: Socket,
    private readonly context: EndpointContext,
    private readonly onCancel: (processId: number, secretKey: number) => void,
  ) {
    this.identity.on('notice', (notice: unknown) => this.send(noticeResponse(reportFields(notice, '01000'))));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => this.gone());
    socket.on('error', () => this.gone());
  }

  /**
   * The client's CancelRequest. The session's connection runs pgtwin's SQL and other clients' statements
   * too, so the server is asked to cancel only while this client's statement is what it runs: a request
   * that arrives while the exchange waits for the connection or while pgtwin's SQL before it runs is kept
   * until the client's messages are reached, and one that arrives when the client has nothing running is
   * dropped, as the server ignores a cancel between statements.
   */
  cancel(): void {
    if (!this.exchanging && this.incoming.length === 0) return;
    this.cancelWanted = true;
    this.sendWantedCancel();
  }

  private sendWantedCancel(): void {
    const head = this.plan[0];
    if (!this.cancelWanted || !this.channel || !head || (head.own && !head.interruptible)) return;
    this.cancelWanted = false;
    void this.keepCancelling(head, ++this.cancelRound);
  }

  /**
   * Sends cancel requests until the statement stops. The server ignores one that reaches the backend before
   * it has read the statement (it is then "between statements"), and the endpoint cannot see when the
   * backend starts on what it was sent in one write: so while the answer the exchange waits on has not come
   * (`head` is still due), the request is sent again, at growing intervals. Never while pgtwin's SQL runs:
   * the exchange waits for the request in flight before sending any ({@link settleCancel}).
   */
  private async keepCancelling(head: Expectation, round: number): Promise<void> {
    const { connection } = this.route!;
    for (const pause of CANCEL_RETRY_PAUSES_MS) {
      this.cancelling = connection.cancelStatement();
      await this.cancelling;
      await sleep(pause, undefined, { ref: false });
      if (round !== this.cancelRound || this.plan[0] !== head || !this.channel) return;
    }
  }

  /**
   * Waits until the server has taken a cancel request sent for this exchange, and drops one not sent: the
   * exchange's statements are answered, and what is sent next (pgtwin's SQL, another client's statement)
   * must not be the one cancelled.
   */
  private async settleCancel(): Promise<void> {
    const cancelling = this.cancelling;
    this.cancelRound++;
    this.cancelWanted = false;
    this.cancelling = undefined;
    await cancelling;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Writes `bytes` to the client, batched with the rest of this pass (see {@link batchedWrite}). */
  private send(bytes: Buffer): void {
    if (this.closed) return;
    for (const error of this.heldErrors.splice(0)) batchedWrite(this.socket, error);
    batchedWrite(this.socket, bytes);
  }

  private fatal(code: string, message: string): void {
    this.send(errorResponse({ S: 'FATAL', V: 'FATAL', C: code, M: message }));
    batchedEnd(this.socket);
  }

  private receive(chunk: Buffer): void {
    if (this.startupBuffer) {
      this.startupBuffer = Buffer.concat([this.startupBuffer, chunk]);
      this.readStartup();
      return;
    }
    this.incoming.push(...this.reader.push(chunk));
    while (this.scram && this.incoming.length > 0) this.authenticate(this.take());
    this.nudge();
  }

  private nudge(): void {
    for (const wake of this.wakers.splice(0)) wake();
  }

  private nextChange(): Promise<void> {
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  private gone(): void {
    this.closed = true;
    this.nudge();
  }

  /** The next client message, left in the queue; fails once the client is gone. */
  private async peek(): Promise<Frame> {
    while (this.incoming.length === 0) {
      if (this.closed) throw new Error('the client closed its connection');
      this.throwIfChannelFailed();
      await this.nextChange();
    }
    return this.incoming[0]!;
  }

  private take(): Frame {
    return this.incoming.shift()!;
  }

  // --- Startup -------------------------------------------------------------------------------------------

  private readStartup(): void {
    while (this.startupBuffer && this.startupBuffer.length >= 8) {
      const buffer = this.startupBuffer;
      const length = buffer.readInt32BE(0);
      if (buffer.length < length) return;
      const code = buffer.readInt32BE(4);
      const body = buffer.subarray(8, length);
      this.startupBuffer = buffer.subarray(length);
      if (code === SSL_REQUEST || code === GSS_REQUEST) {
        this.send(Buffer.from('N'));
      } else if (code === CANCEL_REQUEST) {
        this.onCancel(body.readInt32BE(0), body.readInt32BE(4));
        this.startupBuffer = undefined;
        batchedEnd(this.socket);
      } else if (code !== PROTOCOL_3) {
        this.startupBuffer = undefined;
        this.fatal('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
      } else {
        this.startup(body);
      }
    }
  }

  private startup(body: Buffer): void {
    const rest = this.startupBuffer!;
    this.startupBuffer = undefined;
    const parameters = new Map<string, string>();
    const cursor = new CStringCursor(body, 0);
    for (let key = cursor.next(); key !== ''; key = cursor.next()) parameters.set(key, cursor.next());
    const user = parameters.get('user') ?? '';
    const database = parameters.get('database') ?? user;
    this.settings = ClientSettings.fromStartup(Object.fromEntries(parameters));
    attachSettings(this.identity, this.settings);
    if (user !== this.context.user) {
      this.fatal(
        '28000',
        `role "${user}" cannot connect through pgtwin's test endpoint: connect as "${this.context.user}", ` +
          'the test role (TEST_DB_USER).',
      );
      return;
    }
    if (database !== this.context.database) {
      this.fatal(
        '3D000',
        `database "${database}" is not served by pgtwin's test endpoint, which serves only the test ` +
          `database "${this.context.database}" (TEST_DB_NAME).`,
      );
      return;
    }
    // As the server asks when the role's password is stored as SCRAM (`password_encryption`'s default since
    // PostgreSQL 14), whether pg_hba.conf says scram-sha-256 or md5.
    if (this.context.verifier) {
      this.scram = this.context.verifier.exchange();
      this.send(authenticationSasl([SCRAM_MECHANISM]));
    } else {
      void this.ready();
    }
    if (rest.length > 0) this.receive(rest);
  }

  /** One SASLInitialResponse (the mechanism and client-first-message) or SASLResponse (client-final). */
  private authenticate(frame: Frame): void {
    const exchange = this.scram!;
    const last = exchange.started;
    let answer: string | ScramFailure;
    if (frame.type !== 'p') {
      answer = new ScramFailure('08P01', `expected SASL response, got message type ${frame.bytes[0]}`);
    } else if (last) {
      answer = exchange.final(frame.bytes.toString('utf8', 5), this.context.user);
    } else {
      const mechanism = new CStringCursor(frame.bytes, 5).next();
      // The mechanism's name, then the response's int32 length.
      const data = 5 + Buffer.byteLength(mechanism) + 1 + 4;
      answer =
        mechanism === SCRAM_MECHANISM
          ? exchange.first(frame.bytes.toString('utf8', data))
          : new ScramFailure('08P01', 'client selected an invalid SASL authentication mechanism');
    }
    if (answer instanceof ScramFailure) {
      this.scram = undefined;
      this.fatal(answer.code, answer.message);
    } else if (last) {
      this.scram = undefined;
      this.send(authenticationSaslFinal(answer));
      void this.ready();
    } else {
      this.send(authenticationSaslContinue(answer));
    }
  }

  private async ready(): Promise<void> {
    let values: Map<string, string>;
    try {
      values = await this.checkSettings();
    } catch (error) {
      const { code, message } = error as { code?: string; message?: string };
      this.fatal(code ?? '22023', message ?? String(error));
      return;
    }
    this.send(authenticationOk());
    for (const [name, value] of Object.entries(await this.context.serverParameters()))
      this.send(parameterStatus(name, values.get(name.toLowerCase()) ?? value));
    this.send(backendKeyData(this.processId, this.secretKey));
    this.send(readyForQuery('I'));
    void this.serve();
  }

  /**
   * The client's startup settings as the server spells them; a value the server rejects fails, as the
   * server refuses such a connection. An application_name alone is taken as it is (no round trip); while
   * several tests run at once nothing is checked here (the endpoint cannot serve the client then anyway).
   */
  private async checkSettings(): Promise<Map<string, string>> {
    if (this.settings.startup.size <= 1) return new Map(this.settings.startup);
    let route: Route;
    try {
      route = this.context.session.route();
    } catch {
      return new Map(this.settings.startup);
    }
    const settings = this.settings;
    return route.connection.run(route.test, (real) => checkStartupSettings(real, settings));
  }

  // --- Exchanges -----------------------------------------------------------------------------------------

  private async serve(): Promise<void> {
    const { session } = this.context;
    try {
      for (;;) {
        const first = await this.peek();
        if (first.type === 'X') break;
        if (IDLE_NOOPS.includes(first.type)) {
          // COPY messages after the COPY ended (postgres.js sends CopyFail when its stream is destroyed) and a
          // Flush with nothing to flush: the server ignores them; they must not hold the session.
          this.take();
          continue;
        }
        this.syncTaken = false;
        this.endsWithSync = false;
        this.owedSync = false;
        this.route = undefined;
        this.exchanging = true;
        try {
          await this.runExchange(first);
        } catch (error) {
          if (this.closed) break;
          this.send(errorResponse(reportFields(error, '55000')));
          await this.discardExchange();
          this.send(readyForQuery(this.statusAfterFailure()));
        } finally {
          this.exchanging = false;
          this.cancelWanted = false;
        }
      }
    } catch {
      // The client went away between exchanges.
    } finally {
      this.closed = true;
      this.socket.destroy();
      // As the server does when a connection ends: what the client left open is rolled back.
      await abandonTransaction(session, this.identity).catch(() => undefined);
    }
  }

  /** Consumes the rest of an exchange that did not run, up to its Sync or Query. */
  private async discardExchange(): Promise<void> {
    while (!this.syncTaken) {
      await this.peek();
      this.syncTaken = ENDS[this.take().type] === 'Z';
    }
  }

  /** The status for the client after an exchange that failed before or while it ran. */
  private statusAfterFailure(): string {
    return this.statusForClient(this.route?.connection.realTransactionStatus() ?? 'I');
  }

  private statusForClient(real: string): string {
    const route = this.route;
    if (!route?.test) return real;
    if (!route.connection.stack.inTransaction(this.identity)) return 'I';
    return real === 'E' ? 'E' : 'T';
  }

  /**
   * Routes the exchange starting with `first` and runs it as a job on the route's connection. A simple Query
   * beginning a transaction first waits its turn at the connection's gate, as in-process clients do.
   */
  private async runExchange(first: Frame): Promise<void> {
    const route = this.routeExchange();
    this.route = route;
    const { connection, test } = route;
    const { stack, gate } = connection;
    if (test && !stack.inTransaction(this.identity) && this.beginsTransaction(first))
      await gate.enter(this.identity, test.name);
    try {
      await connection.run(test, (real) => this.exchange(real));
    } finally {
      if (test && connection.test === test && !stack.inTransaction(this.identity)) gate.leave(this.identity);
    }
  }

  /**
   * Whether the exchange starting with `first` begins a transaction: a simple Query, or an Execute among the
   * messages already received up to the Sync, of a statement that does (postgres.js sends BEGIN this way).
   */
  private beginsTransaction(first: Frame): boolean {
    if (first.type === 'Q') return opensTransaction({ text: queryText(first), simple: true });
    const statements = new Map<string, string>();
    const portals = new Map<string, string>();
    for (const frame of this.incoming) {
      const cursor = new CStringCursor(frame.bytes, 5);
      if (frame.type === 'P') {
        const name = cursor.next();
        statements.set(name, cursor.next());
      } else if (frame.type === 'B') {
        const portal = cursor.next();
        const name = cursor.next();
        portals.set(portal, statements.get(name) ?? this.statements.get(name) ?? '');
      } else if (frame.type === 'E') {
        const portal = cursor.next();
        const text = portals.get(portal) ?? this.portals.get(portal) ?? '';
        if (classifyStatement(text).kind === 'begin') return true;
      } else if (ENDS[frame.type] === 'Z') break;
    }
    return false;
  }

  /**
   * The test an exchange belongs to. A socket carries no asynchronous context, so the endpoint serves the one
   * test running (or none, outside tests): while several run at once, it cannot tell whose a client is.
   */
  private routeExchange(): Route {
    try {
      return this.context.session.route();
    } catch (error) {
      if (!(error instanceof IsolationError) || error.reason !== 'ambiguous-test') throw error;
      throw new IsolationError(
        'ambiguous-test',
        'A client of the wire endpoint sent a statement while several tests of this worker run at once ' +
          '(test.concurrent, describe.concurrent). A connection to the endpoint carries no test, so the ' +
          'endpoint serves one test at a time: run the tests that use it one after another, or connect ' +
          "with the test process's own `pg`, which is routed to each concurrent test.",
        { cause: error },
      );
    }
  }

  /** One exchange, from its first message to the ReadyForQuery that ends it, on the route's connection. */
  private async exchange(real: pg.Client): Promise<void> {
    const { connection, test } = this.route!;
    const first = await this.peek();
    if (test && first.type === 'Q' && holdsTransactionControl(queryText(first))) {
      this.take();
      this.syncTaken = true;
      await this.emulate(real, queryText(first), true);
      this.send(readyForQuery(this.statusForClient(connection.realTransactionStatus() ?? 'I')));
      return;
    }
    this.failed = false;
    this.dropping = false;
    this.plan = [];
    await this.openChannel(real);
    let answered = false;
    try {
      const { stack } = connection;
      if (test) this.sendPrefix(first);
      let status = await this.forwardUntilReady(real);
      answered = true;
      if (this.cancelling) await this.settleCancel();
      if (test) {
        const after = connection.settings.after(this.settings);
        if (status === 'E') this.settings.reapply.clear();
        else if (after !== '') status = await this.ownExchange(simpleQuery(after));
      } else {
        const capture = connection.settings.outsideCapture();
        if (capture && status !== 'E') status = await this.ownExchange(simpleQuery(capture.sql), capture);
      }
      if (
        status === 'E' &&
        test &&
        !stack.inTransaction(this.identity) &&
        stack.snapshot().statementSavepoint
      ) {
        status = await this.ownExchange(simpleQuery(stack.failStatement()));
      }
      this.send(readyForQuery(this.statusForClient(status)));
    } finally {
      await this.settleCancel();
      if (!answered) await this.abortExchange();
      this.channel?.release();
      this.channel = undefined;
    }
  }

  /**
   * pgtwin's SQL sent ahead of the client's messages, in the same write: the test's BEGIN, the switch to the
   * client's settings and, outside its transaction, the statement savepoint. Before the client's extended
   * protocol messages it goes as Bind/Execute of statements pgtwin prepared once per connection, without a
   * Sync, on names of pgtwin's own (the client's unnamed statement and portal may be in use across exchanges,
   * as pgx does), and a Flush: the server
   * answers it before it reads the client's messages, with no ReadyForQuery of its own (cheaper for the
   * server than a simple Query). Before a simple Query (or FunctionCall), which discards the unnamed
   * statement and portal anyway, and for a settings switch (several statements, whose results are read
   * back), it goes as a simple Query: after an error in messages without a Sync the server would skip the
   * client's Query.
   */
  private sendPrefix(first: Frame): void {
    const { connection, test } = this.route!;
    const { stack } = connection;
    const aborted = connection.realTransactionStatus() === 'E';
    const plan = connection.settings.enter(this.settings, test!.id, stack.rollbacks, aborted);
    const statement = stack.inTransaction(this.identity) ? [] : stack.beginStatement();
    if (!plan && statement.length === 0) return;
    const statements = [...connection.beginPrefix(), ...(plan ? [plan.sql] : []), ...statement];
    if (!plan && !'QF'.includes(first.type)) {
      const prepared = ownPrepared(connection);
      for (const sql of statements) {
        const own = ownStatement(sql);
        if (!prepared.has(sql)) {
          prepared.add(sql);
          // Skipped or failed (an error earlier in the prefix): prepared again next time.
          for (const frame of own.prepare)
            this.expect(frame, { own: true, onSkip: () => prepared.delete(sql) });
        }
        for (const frame of own.run) this.expect(frame, { own: true });
      }
      // A cancel request waits for its answer, so that it reaches the client's statement, not pgtwin's.
      this.channel!.write(FLUSH);
      return;
    }
    const frame = simpleQuery(statements.join('; '));
    if (!plan) return this.expect(frame, { own: true });
    const capture = captureReader(plan);
    this.expect(frame, {
      own: true,
      onFrame: (reply) => {
        if (reply.type === 'E') connection.settings.lost();
        capture(reply);
      },
    });
  }

  private async openChannel(real: pg.Client): Promise<void> {
    this.channelFailure = undefined;
    this.channel = await RawChannel.open(real, (frame) => this.fromServer(frame));
    this.channel.onFailure((error) => {
      this.channelFailure = error;
      this.plan = [];
      this.nudge();
    });
  }

  private throwIfChannelFailed(): void {
    if (this.channelFailure) throw this.channelFailure;
  }

  /** Forwards the client's messages until its Sync or Query has been answered; returns the real status. */
  private async forwardUntilReady(real: pg.Client): Promise<string> {
    for (;;) {
      // Without awaiting when a message is queued: a pipelined exchange's messages arrive together.
      const frame = this.incoming[0] ?? (await this.peek());
      this.throwIfChannelFailed();
      this.take();
      const ends = ENDS[frame.type];
      if (frame.type === 'Q') this.noteStatement(queryText(frame));
      if (ends === 'Z') {
        this.syncTaken = true;
        this.endsWithSync = frame.type === 'S';
        if (this.copying && this.endsWithSync) this.owedSync = true;
        const status = new Promise<string>((resolve) =>
          this.expect(frame, { own: false, onEnd: (end) => resolve(readyStatus(end)) }),
        );
        await this.untilAnswered();
        return status;
      }
      if (this.dropping) continue;
      if (frame.type === 'P') {
        const cursor = new CStringCursor(frame.bytes, 5);
        const name = cursor.next();
        this.statements.set(name, cursor.next());
      } else if (frame.type === 'B') {
        const cursor = new CStringCursor(frame.bytes, 5);
        const portal = cursor.next();
        this.portals.set(portal, this.statements.get(cursor.next()) ?? '');
      } else if (frame.type === 'C' && frame.bytes[5] === 0x53 /* S */) {
        this.statements.delete(new CStringCursor(frame.bytes, 6).next());
      } else if (frame.type === 'E') {
        const text = this.portals.get(new CStringCursor(frame.bytes, 5).next()) ?? '';
        if (this.route?.test && classifyStatement(text).kind !== 'other') {
          await this.emulateExecute(real, text);
          continue;
        }
        this.noteStatement(text);
      }
      if (ends) this.forward(frame);
      else this.channel!.write(frame.bytes);
    }
  }

  /** Sends the client's `frame` under the client's own names, after preparing its statement again if due. */
  private forward(frame: Frame): void {
    const { reparse, frame: renamed } = this.names.rewrite(frame, this.route!.connection.preparedEpoch);
    // Preparing it again is part of running the client's statement: a cancel may interrupt it.
    if (reparse) this.expect(reparse.frame, { own: true, interruptible: true, onSkip: reparse.failed });
    this.expect(renamed, { own: false });
  }

  /** Records that the client runs `text`, which may change its settings. */
  private noteStatement(text: string): void {
    const { connection, test } = this.route!;
    const inTransaction = connection.stack.inTransaction(this.identity);
    connection.noteStatement(test ? this.settings : undefined, text, inTransaction);
  }

  /** Sends `frame` and records that its response is due, forwarded to the client unless it is pgtwin's. */
  private expect(frame: Frame, expectation: Omit<Expectation, 'ends'>): void {
    this.plan.push({ ends: ENDS[frame.type]!, ...expectation });
    this.channel!.write(frame.bytes);
    if (this.cancelWanted) this.sendWantedCancel();
  }

  /**
   * Sends pgtwin's own simple query or Sync and waits for its ReadyForQuery; returns the status. With a
   * `plan`, the settings it reads back go to the plan.
   */
  private async ownExchange(frame: Frame, plan?: SettingsPlan): Promise<string> {
    const status = new Promise<string>((resolve) =>
      this.expect(frame, {
        own: true,
        onEnd: (end) => resolve(readyStatus(end)),
        onFrame: plan && captureReader(plan),
      }),
    );
    await this.untilAnswered();
    return status;
  }

  /** Waits until the server answered everything sent, passing on the client's COPY data meanwhile. */
  private async untilAnswered(): Promise<void> {
    while (this.plan.length > 0) {
      this.throwIfChannelFailed();
      const next = this.incoming[0];
      if (
        next &&
        ((this.copying && 'dcf'.includes(next.type)) || (this.owedSync && 'SH'.includes(next.type)))
      ) {
        this.channel!.write(this.take().bytes);
        continue;
      }
      if (this.closed && this.copying) throw new Error('the client closed its connection during COPY');
      await this.nextChange();
    }
    this.throwIfChannelFailed();
  }

  private fromServer(frame: Frame): void {
    const head = this.plan[0];
    head?.onFrame?.(frame);
    if (frame.type === 'E') {
      // The server flushes an ErrorResponse at once, ahead of the ReadyForQuery that follows it. Once the
      // client has sent its Sync or Query that ReadyForQuery needs nothing more from it, so the error waits
      // to go with it: node-pg reports an error before it reads the ReadyForQuery after it, and the
      // transaction status a client reads after a failed query must not depend on TCP timing. During COPY, or
      // before the Sync (the client may wait for the error to send it), it goes at once.
      if (this.syncTaken && !this.copying) this.heldErrors.push(frame.bytes);
      else this.send(frame.bytes);
      this.copying = false;
      if (head && head.ends !== 'Z') {
        this.failed = true;
        // The server skips the rest of the exchange up to the Sync, which alone still answers.
        const sync = this.plan.findIndex((expectation) => expectation.ends === 'Z');
        for (const skipped of this.plan.splice(0, sync === -1 ? this.plan.length : sync)) skipped.onSkip?.();
      }
    } else {
      if (frame.type === 'G') {
        this.copying = true;
        this.owedSync = this.syncTaken && this.endsWithSync;
      }
      if (frame.type === 'C') this.copying = false;
      if (frame.type === 'Z') this.owedSync = false;
      const ends = head !== undefined && head.ends.includes(frame.type);
      // ParameterStatus of pgtwin's own SQL reports the client's own settings, switched in.
      if ((!(head?.own ?? false) || frame.type === 'S') && frame.type !== 'Z') this.send(frame.bytes);
      if (ends) {
        this.plan.shift();
        head.onEnd?.(frame);
      }
    }
    if (this.cancelWanted) this.sendWantedCancel();
    this.nudge();
  }

  /**
   * Transaction control sent through the extended protocol: the server answers the messages before it and a
   * Sync of pgtwin's, then the emulation answers the Execute with the command tag the server would send.
   */
  private async emulateExecute(real: pg.Client, text: string): Promise<void> {
    if (this.failed) return;
    await this.ownExchange(SYNC);
    this.dropping = this.failed;
    if (this.failed) return;
    await this.settleCancel();
    this.channel!.release();
    this.channel = undefined;
    try {
      this.dropping = !(await this.emulate(real, text, false));
    } finally {
      await this.openChannel(real);
    }
  }

  /** Runs `text` through the in-process emulation and answers the client; false when it failed. */
  private async emulate(real: pg.Client, text: string, simple: boolean): Promise<boolean> {
    const { connection, test } = this.route!;
    try {
      const results = await executeInJob(
        { connection, test: test!, real, client: this.identity },
        {
          query: { text, rowMode: 'array', types: RAW_TEXT } as pg.QueryConfig,
          text,
          simple,
          rowMode: 'array',
        },
      );
      for (const result of Array.isArray(results) ? results : results ? [results] : []) {
        if (simple && result.fields.length > 0) {
          this.send(rowDescription(result.fields));
          for (const row of result.rows as unknown as Array<Array<string | null>>) this.send(dataRow(row));
        }
        this.send(commandComplete(commandTag(result)));
      }
      return true;
    } catch (error) {
      this.send(errorResponse(reportFields(error, '55000')));
      return false;
    }
  }

  /**
   * The exchange stopped before its ReadyForQuery (the client left): the server may still owe responses,
   * so a Sync of pgtwin's ends the exchange before the connection goes back to the session.
   */
  private async abortExchange(): Promise<void> {
    if (!this.channel || this.channelFailure) return;
    try {
      if (this.copying) {
        this.channel.write(copyFail('the client closed its connection during COPY'));
        this.copying = false;
      }
      const status = await this.ownExchange(SYNC);
      const { stack } = this.route!.connection;
      if (status === 'E' && this.route?.test && stack.snapshot().statementSavepoint)
        await this.ownExchange(simpleQuery(stack.failStatement()));
    } catch {
      // The connection is gone; the session opens another.
    }
  }
}

const SYNC = encodeFrame('S');
const FLUSH = encodeFrame('H').bytes;

/** The pauses between the cancel requests {@link WireConnection.keepCancelling} sends for one statement. */
const CANCEL_RETRY_PAUSES_MS = [20, 50, 100, 200, 400, 800];

/** The portal pgtwin's own extended-protocol statements run in. */
const OWN_PORTAL = 'pgtwin_prefix';

/** The messages that run one SQL text of pgtwin's as a prepared statement of its own. */
interface OwnStatement {
  /** Close of the statement (no error when it does not exist), then Parse: preparing it again. */
  readonly prepare: readonly Frame[];
  /** Close of the portal left by the last run, then Bind and Execute. */
  readonly run: readonly Frame[];
}

/**
 * `sql` as extended-protocol messages, encoded once per text: the statement is named after the text's place
 * in this table (`pgtwin_own_<n>`, a prefix no client's statement gets), so every session connection
 * prepares it once and then only binds and runs it.
 */
function ownStatement(sql: string): OwnStatement {
  let own = OWN_STATEMENTS.get(sql);
  if (!own) {
    const statement = Buffer.from(`pgtwin_own_${OWN_STATEMENTS.size}\0`);
    const portal = Buffer.from(`${OWN_PORTAL}\0`);
    own = {
      prepare: [
        encodeFrame('C', Buffer.concat([Buffer.from('S'), statement])),
        encodeFrame('P', Buffer.concat([statement, Buffer.from(`${sql}\0\0\0`, 'utf8')])),
      ],
      run: [
        encodeFrame('C', Buffer.concat([Buffer.from('P'), portal])),
        encodeFrame('B', Buffer.concat([portal, statement, Buffer.alloc(6)])),
        encodeFrame('E', Buffer.concat([portal, Buffer.alloc(4)])),
      ],
    };
    OWN_STATEMENTS.set(sql, own);
  }
  return own;
}
const OWN_STATEMENTS = new Map<string, OwnStatement>();

/**
 * The texts of {@link ownStatement} each session connection has prepared, as of its `preparedEpoch` (a test's
 * end, a new connection and a client's DEALLOCATE ALL make the server forget them).
 */
const OWN_PREPARED = new WeakMap<SessionConnection, { epoch: number; texts: Set<string> }>();

function ownPrepared(connection: SessionConnection): Set<string> {
  let prepared = OWN_PREPARED.get(connection);
  if (prepared?.epoch !== connection.preparedEpoch) {
    prepared = { epoch: connection.preparedEpoch, texts: new Set() };
    OWN_PREPARED.set(connection, prepared);
  }
  return prepared.texts;
}

function simpleQuery(sql: string): Frame {
  return encodeFrame('Q', Buffer.from(`${sql}\0`, 'utf8'));
}

function copyFail(message: string): Buffer {
  return encodeFrame('f', Buffer.from(`${message}\0`, 'utf8')).bytes;
}

/**
 * Collects the rows a settings plan reads back (text DataRows under a RowDescription whose first column is
 * {@link CAPTURE_COLUMN}) and hands them to the plan at ReadyForQuery.
 */
function captureReader(plan: SettingsPlan): (frame: Frame) => void {
  const rows: CaptureRow[] = [];
  let capturing = false;
  return (frame) => {
    if (frame.type === 'T') capturing = new CStringCursor(frame.bytes, 7).next() === CAPTURE_COLUMN;
    else if (frame.type === 'D' && capturing) {
      const [name, value, whose] = dataRowValues(frame);
      rows.push([name!, value ?? null, whose!]);
    } else if (frame.type === 'Z') plan.absorb(rows);
  };
}

/** The text values of a DataRow. */
function dataRowValues(frame: Frame): Array<string | null> {
  const { bytes } = frame;
  const values: Array<string | null> = [];
  let offset = 7;
  for (let i = bytes.readInt16BE(5); i > 0; i--) {
    const length = bytes.readInt32BE(offset);
    offset += 4;
    values.push(length < 0 ? null : bytes.toString('utf8', offset, offset + length));
    offset += Math.max(length, 0);
  }
  return values;
}

function readyStatus(frame: Frame): string {
  return String.fromCharCode(frame.bytes[5]!);
}

function queryText(frame: Frame): string {
  return frame.bytes.toString('utf8', 5, frame.bytes.length - 1);
}

/** The CommandComplete tag node-pg parsed a result from. */
function commandTag(result: pg.QueryResult): string {
  const { command, rowCount } = result;
  if (command === 'INSERT') return `INSERT 0 ${rowCount ?? 0}`;
  return rowCount === null || rowCount === undefined ? command : `${command} ${rowCount}`;
}
