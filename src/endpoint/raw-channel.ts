import type pg from 'pg';
import {
  clientInternals,
  divertServerMessages,
  type ConnectionInternals,
} from '../isolation/pg-internals.js';
import { batchedWrite } from './batched-write.js';
import { FrameReader, type Frame } from './frame-reader.js';

/**
 * The session's real `pg.Client` lent to the endpoint as a byte pipe. It is taken the way pg-cursor and
 * pg-copy-streams take a connection (a Submittable queued on the client, so node-pg sends nothing else in
 * the meantime); while it is open, server messages go to `onFrame` unparsed instead of to node-pg, and
 * {@link write} sends bytes as they are. {@link release} hands the client back, idle, with the transaction
 * status of the server's last ReadyForQuery.
 */
export class RawChannel {
  private readonly reader = new FrameReader();
  private status = 'I';
  private released = false;
  private failure: Error | undefined;
  private readonly failureListeners: Array<(error: Error) => void> = [];
  private giveBack: ((status: string | undefined) => void) | undefined;

  private constructor(
    private readonly stream: ConnectionInternals['stream'],
    private readonly onFrame: (frame: Frame) => void,
  ) {}

  /** Waits until `real` is idle, then takes it over. */
  static open(real: pg.Client, onFrame: (frame: Frame) => void): Promise<RawChannel> {
    return new Promise((resolve, reject) => {
      let channel: RawChannel | undefined;
      const submittable = {
        submit() {
          channel = new RawChannel(clientInternals(real).connection.stream, onFrame);
          channel.giveBack = divertServerMessages(real, channel.onData);
          resolve(channel);
        },
        handleReadyForQuery() {},
        handleError(error: Error) {
          // The connection failed (node-pg fails its active query): the exchange cannot finish.
          if (channel) channel.fail(error);
          else reject(error);
        },
      };
      real.query(submittable as unknown as pg.QueryConfig);
    });
  }

  /** The transaction status of the last ReadyForQuery the server sent: `I`, `T` or `E`. */
  get transactionStatus(): string {
    return this.status;
  }

  /** Sends `bytes`, batched with the rest of this pass (see {@link batchedWrite}) into one round trip. */
  write(bytes: Buffer): void {
    if (!this.failure) batchedWrite(this.stream, bytes);
  }

  /** Calls `listener` once if the connection fails while the channel is open (now, if it already has). */
  onFailure(listener: (error: Error) => void): void {
    if (this.failure) listener(this.failure);
    else this.failureListeners.push(listener);
  }

  /** Gives the client back to node-pg as idle, as if it had just received the last ReadyForQuery. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.giveBack?.(this.failure ? undefined : this.status);
  }

  private readonly onData = (chunk: Buffer): void => {
    for (const frame of this.reader.push(chunk)) {
      if (frame.type === 'Z') this.status = String.fromCharCode(frame.bytes[5]!);
      this.onFrame(frame);
    }
  };

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const listener of this.failureListeners.splice(0)) listener(error);
  }
}
