/** A stream whose writes can be held back and sent together (a `net.Socket`). */
export interface CorkableStream {
  readonly writableCorked: number;
  cork(): void;
  uncork(): void;
  write(bytes: Buffer): unknown;
}

/**
 * Writes `bytes` to `stream`, holding them until the pending promise callbacks have run (`nextTick` runs after
 * them): what the endpoint writes in one pass (pgtwin's savepoint and the client's messages; a row
 * description, its rows and the command tag) leaves in one system call and one packet, and the server or the
 * client gets it all without waiting for the next turn of the event loop.
 */
export function batchedWrite(stream: CorkableStream, bytes: Buffer): void {
  if (stream.writableCorked === 0) {
    stream.cork();
    process.nextTick(() => stream.uncork());
  }
  stream.write(bytes);
}
