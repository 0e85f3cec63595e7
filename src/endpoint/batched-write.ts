/** A stream written to in batches (a `net.Socket`). */
export interface BatchableStream {
  write(bytes: Buffer): unknown;
  end(): unknown;
}

interface Batch {
  readonly buffers: Buffer[];
  end: boolean;
}

const pending = new WeakMap<BatchableStream, Batch>();

/**
 * Writes `bytes` to `stream` once the current event-loop phase is done (`setImmediate`: after every callback
 * and promise continuation this input set off), so what the endpoint writes in one pass leaves in one packet:
 * pgtwin's savepoint with the client's messages, and an ErrorResponse with the ReadyForQuery sent after it, as
 * the server sends them. (`nextTick` would flush before the promise continuations and split them: a client
 * could then see the error before its transaction status.) The bytes are joined here rather than corked: a
 * corked socket sends with `writev`, which on loopback cost several times a single `write` of the same bytes.
 */
export function batchedWrite(stream: BatchableStream, bytes: Buffer): void {
  const batch = pending.get(stream);
  if (batch) {
    batch.buffers.push(bytes);
    return;
  }
  pending.set(stream, { buffers: [bytes], end: false });
  setImmediate(() => {
    const { buffers, end } = pending.get(stream)!;
    pending.delete(stream);
    stream.write(buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers));
    if (end) stream.end();
  });
}

/** Ends `stream` once what {@link batchedWrite} holds for it has been written. */
export function batchedEnd(stream: BatchableStream): void {
  const batch = pending.get(stream);
  if (batch) batch.end = true;
  else stream.end();
}
