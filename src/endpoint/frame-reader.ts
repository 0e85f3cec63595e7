/** One protocol message: its type byte (as a character) and the whole message, type byte and length included. */
export interface Frame {
  readonly type: string;
  readonly bytes: Buffer;
}

/**
 * Splits a byte stream of PostgreSQL v3 protocol messages (1-byte type, int32 length that counts itself)
 * into whole messages, whichever way they travel. Bytes of a message not yet complete are kept for the next
 * chunk.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  /** Adds `chunk` and returns every message it completes, in order. */
  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    while (this.pending.length - offset >= 5) {
      const length = this.pending.readInt32BE(offset + 1);
      if (this.pending.length - offset < length + 1) break;
      const bytes = this.pending.subarray(offset, offset + length + 1);
      frames.push({ type: String.fromCharCode(bytes[0]!), bytes });
      offset += length + 1;
    }
    this.pending = this.pending.subarray(offset);
    return frames;
  }
}

/** One message of `type` with `body`, framed as the protocol frames it in both directions. */
export function encodeFrame(type: string, body: Buffer = Buffer.alloc(0)): Frame {
  const bytes = Buffer.alloc(5 + body.length);
  bytes.write(type, 0, 'latin1');
  bytes.writeInt32BE(body.length + 4, 1);
  body.copy(bytes, 5);
  return { type, bytes };
}

/** Reads the null-terminated strings of a message body, from `offset`. */
export class CStringCursor {
  constructor(
    private readonly bytes: Buffer,
    private offset: number,
  ) {}

  next(): string {
    const end = this.bytes.indexOf(0, this.offset);
    const text = this.bytes.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }
}
