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
 * Writes `bytes` to `stream`, holding them until the pending promise callbacks have run (`nextTick` runs after
 * them): what the endpoint writes in one pass (pgtwin's savepoint and the client's messages; a row
 * description, its rows and the command tag) leaves in one packet, and the server or the client gets it all
 * without waiting for the next turn of the event loop. The bytes are joined here rather than corked: a corked
 * socket sends with `writev`, which on loopback cost several times a single `write` of the same bytes.
 */
export function batchedWrite(stream: BatchableStream, bytes: Buffer): void {
  const batch = pending.get(stream);
  if (batch) {
    batch.buffers.push(bytes);
    return;
  }
  pending.set(stream, { buffers: [bytes], end: false });
  process.nextTick(() => {
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
