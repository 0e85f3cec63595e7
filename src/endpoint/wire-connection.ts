import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type pg from 'pg';
import { abandonTransaction, executeInJob, holdsTransactionControl } from '../isolation/execute-query.js';
import { classifyStatement } from '../isolation/statement-classifier.js';
import type { TestSession } from '../isolation/test-session.js';
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
import { CStringCursor, encodeFrame, FrameReader, type Frame } from './frame-reader.js';
import { RawChannel } from './raw-channel.js';
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
  /** pgtwin's own message: its response never reaches the client (errors excepted). */
  readonly own: boolean;
  readonly onEnd?: (frame: Frame) => void;
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
  readonly processId = randomBytes(4).readInt32BE() & 0x7fffffff;
  readonly secretKey = randomBytes(4).readInt32BE();
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
  /** Set while an exchange holds the session's connection. */
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

  /** Whether an exchange of this client holds the session's connection. */
  get running(): boolean {
    return this.channel !== undefined;
  }

  close(): void {
    this.socket.destroy();
  }

  private send(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  private fatal(code: string, message: string): void {
    this.send(errorResponse({ S: 'FATAL', V: 'FATAL', C: code, M: message }));
    this.socket.end();
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
        this.socket.end();
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
    this.send(authenticationOk());
    for (const [name, value] of Object.entries(await this.context.serverParameters()))
      this.send(parameterStatus(name, value));
    this.send(backendKeyData(this.processId, this.secretKey));
    this.send(readyForQuery('I'));
    void this.serve();
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
        try {
          await session.run(() => this.exchange());
        } catch (error) {
          if (this.closed) break;
          this.send(errorResponse(reportFields(error, '55000')));
          await this.discardExchange();
          this.send(readyForQuery(this.statusForClient(session.realTransactionStatus() ?? 'I')));
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

  private statusForClient(real: string): string {
    const { session } = this.context;
    if (!session.inTest) return real;
    if (!session.stack.inTransaction(this.identity)) return 'I';
    return real === 'E' ? 'E' : 'T';
  }

  /** One exchange, from its first message to the ReadyForQuery that ends it; runs as a session job. */
  private async exchange(): Promise<void> {
    const { session } = this.context;
    const first = await this.peek();
    if (session.inTest && first.type === 'Q' && holdsTransactionControl(queryText(first))) {
      this.take();
      this.syncTaken = true;
      await this.emulate(queryText(first), true);
      this.send(readyForQuery(this.statusForClient(session.realTransactionStatus() ?? 'I')));
      return;
    }
    const real = await session.connection();
    this.failed = false;
    this.dropping = false;
    this.plan = [];
    await this.openChannel(real);
    let answered = false;
    try {
      const { stack } = session;
      if (session.inTest && !stack.inTransaction(this.identity))
        this.expect(simpleQuery(session.beginPrefix() + stack.beginStatement()), true);
      let status = await this.forwardUntilReady(real);
      answered = true;
      if (
        status === 'E' &&
        session.inTest &&
        !stack.inTransaction(this.identity) &&
        stack.snapshot().statementSavepoint
      ) {
        status = await this.ownExchange(simpleQuery(stack.failStatement()));
      }
      this.send(readyForQuery(this.statusForClient(status)));
    } finally {
      if (!answered) await this.abortExchange();
      this.channel?.release();
      this.channel = undefined;
    }
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
      const frame = await this.peek();
      this.throwIfChannelFailed();
      this.take();
      const ends = ENDS[frame.type];
      if (ends === 'Z') {
        this.syncTaken = true;
        const status = new Promise<string>((resolve) =>
          this.expect(frame, false, (end) => resolve(readyStatus(end))),
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
        if (this.context.session.inTest && classifyStatement(text).kind !== 'other') {
          await this.emulateExecute(real, text);
          continue;
        }
      }
      if (ends) this.expect(frame, false);
      else this.channel!.write(frame.bytes);
    }
  }

  /** Sends `frame` and records that its response is due, forwarded to the client unless it is pgtwin's. */
  private expect(frame: Frame, own: boolean, onEnd?: (frame: Frame) => void): void {
    this.plan.push({ ends: ENDS[frame.type]!, own, onEnd });
    this.channel!.write(frame.bytes);
  }

  /** Sends pgtwin's own simple query or Sync and waits for its ReadyForQuery; returns the status. */
  private async ownExchange(frame: Frame): Promise<string> {
    const status = new Promise<string>((resolve) =>
      this.expect(frame, true, (end) => resolve(readyStatus(end))),
    );
    await this.untilAnswered();
    return status;
  }

  /** Waits until the server answered everything sent, passing on the client's COPY data meanwhile. */
  private async untilAnswered(): Promise<void> {
    while (this.plan.length > 0) {
      this.throwIfChannelFailed();
      const next = this.incoming[0];
      if (this.copying && next && 'dcf'.includes(next.type)) {
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
    if (frame.type === 'E') {
      this.send(frame.bytes);
      this.copying = false;
      if (head && head.ends !== 'Z') {
        this.failed = true;
        // The server skips the rest of the exchange up to the Sync, which alone still answers.
        const sync = this.plan.findIndex((expectation) => expectation.ends === 'Z');
        this.plan.splice(0, sync === -1 ? this.plan.length : sync);
      }
    } else {
      if (frame.type === 'G') this.copying = true;
      if (frame.type === 'C') this.copying = false;
      const ends = head !== undefined && head.ends.includes(frame.type);
      if (!(head?.own ?? false) && frame.type !== 'Z') this.send(frame.bytes);
      if (ends) {
        this.plan.shift();
        head.onEnd?.(frame);
      }
    }
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
    this.channel!.release();
    this.channel = undefined;
    try {
      this.dropping = !(await this.emulate(text, false));
    } finally {
      await this.openChannel(real);
    }
  }

  /** Runs `text` through the in-process emulation and answers the client; false when it failed. */
  private async emulate(text: string, simple: boolean): Promise<boolean> {
    try {
      const results = await executeInJob(this.context.session, this.identity, {
        query: { text, rowMode: 'array', types: RAW_TEXT } as pg.QueryConfig,
        text,
        simple,
        rowMode: 'array',
      });
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
      const { session } = this.context;
      if (status === 'E' && session.inTest && session.stack.snapshot().statementSavepoint)
        await this.ownExchange(simpleQuery(session.stack.failStatement()));
    } catch {
      // The connection is gone; the session opens another.
    }
  }
}

const SYNC = encodeFrame('S');

function simpleQuery(sql: string): Frame {
  return encodeFrame('Q', Buffer.from(`${sql}\0`, 'utf8'));
}

function copyFail(message: string): Buffer {
  return encodeFrame('f', Buffer.from(`${message}\0`, 'utf8')).bytes;
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
