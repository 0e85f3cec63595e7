import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Size and SHA-256 of a file's bytes, as a dump manifest records them. */
export interface FileDigest {
  bytes: number;
  /** Lowercase hex. */
  sha256: string;
}

/** A pass-through that digests what flows through it; read {@link DigestStream.digest} after it finished. */
export class DigestStream extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null, data?: Buffer) => void,
  ) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  digest(): FileDigest {
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

/** Digest of the file at `file`, read as a stream. */
export async function digestFile(file: string): Promise<FileDigest> {
  const digest = new DigestStream();
  await pipeline(createReadStream(file), digest, async (source: AsyncIterable<unknown>) => {
    for await (const _ of source); // the digest is all we want
  });
  return digest.digest();
}
