import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/** The only SASL mechanism the endpoint offers: no channel binding, since it speaks plain TCP on loopback. */
export const SCRAM_MECHANISM = 'SCRAM-SHA-256';

/** PostgreSQL's default `scram_iterations`. */
const ITERATIONS = 4096;

/** Why a SCRAM exchange stopped: the SQLSTATE and message PostgreSQL sends in the same case (FATAL). */
export class ScramFailure {
  constructor(
    readonly code: string,
    readonly message: string,
  ) {}
}

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();
const sha256 = (bytes: Buffer): Buffer => createHash('sha256').update(bytes).digest();

/** The `key=value` attributes of a SCRAM message, in order. */
function attributes(text: string): Array<[string, string]> {
  return text.split(',').map((part) => [part.slice(0, 1), part.slice(2)]);
}

const malformed = (why: string) => new ScramFailure('08P01', `malformed SCRAM message (${why})`);

/**
 * The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) for one password, as PostgreSQL stores it with
 * `password_encryption = scram-sha-256`: a random salt, and the stored and server keys derived from it. The
 * password itself is not kept.
 *
 * @example
 * const verifier = ScramVerifier.derive('secret');
 * const exchange = verifier.exchange();
 * const serverFirst = exchange.first(clientFirstMessage);
 * const serverFinal = exchange.final(clientFinalMessage, 'app'); // a ScramFailure for a wrong password
 */
export class ScramVerifier {
  private constructor(
    private readonly salt: Buffer,
    private readonly storedKey: Buffer,
    private readonly serverKey: Buffer,
  ) {}

  /** Derives the keys of `password` with a new random salt (about 5 ms: once per endpoint, not per client). */
  static derive(password: string): ScramVerifier {
    const salt = randomBytes(16);
    // PostgreSQL applies SASLprep first; it leaves ASCII passwords unchanged, and NFKC covers the usual rest.
    const salted = pbkdf2Sync(password.normalize('NFKC'), salt, ITERATIONS, 32, 'sha256');
    return new ScramVerifier(salt, sha256(hmac(salted, 'Client Key')), hmac(salted, 'Server Key'));
  }

  /** One client's exchange: {@link ScramExchange.first}, then {@link ScramExchange.final}. */
  exchange(): ScramExchange {
    return new ScramExchange(this.salt, this.storedKey, this.serverKey);
  }
}

/** One authentication of one client against a {@link ScramVerifier}'s keys. */
export class ScramExchange {
  private gs2Header = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';

  constructor(
    private readonly salt: Buffer,
    private readonly storedKey: Buffer,
    private readonly serverKey: Buffer,
  ) {}

  /** Whether the client's first message was answered. */
  get started(): boolean {
    return this.serverFirst !== '';
  }

  /** Answers the client-first-message (`n,,n=*,r=…`) with the server-first-message (`r=…,s=…,i=4096`). */
  first(clientFirst: string): string | ScramFailure {
    const match = /^([ny]|p=[^,]*),(a=[^,]*)?,(.*)$/.exec(clientFirst);
    if (!match) return malformed('invalid GS2 header');
    if (match[1]!.startsWith('p='))
      return new ScramFailure('08P01', 'channel binding is not supported by this build');
    this.gs2Header = `${match[1]},${match[2] ?? ''},`;
    this.clientFirstBare = match[3]!;
    // The user name is ignored, as PostgreSQL ignores it: the startup message named the user.
    const clientNonce = attributes(this.clientFirstBare).find(([key]) => key === 'r')?.[1];
    if (!clientNonce) return malformed('no client nonce');
    this.nonce = clientNonce + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${this.salt.toString('base64')},i=${ITERATIONS}`;
    return this.serverFirst;
  }

  /**
   * Checks the client-final-message's proof and returns the server-final-message (`v=…`), which proves to
   * the client that the server knows the password too. Fails with SQLSTATE 28P01 when the proof is wrong.
   */
  final(clientFinal: string, user: string): string | ScramFailure {
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt === -1) return malformed('no proof');
    const withoutProof = clientFinal.slice(0, proofAt);
    const fields = new Map(attributes(withoutProof));
    if (fields.get('c') !== Buffer.from(this.gs2Header).toString('base64'))
      return malformed('unexpected channel-binding data');
    if (fields.get('r') !== this.nonce) return malformed('nonce does not match');
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const signature = hmac(this.storedKey, authMessage);
    if (proof.length !== signature.length) return malformed('invalid proof length');
    const clientKey = Buffer.from(proof.map((byte, i) => byte ^ signature[i]!));
    if (!timingSafeEqual(sha256(clientKey), this.storedKey))
      return new ScramFailure('28P01', `password authentication failed for user "${user}"`);
    return `v=${hmac(this.serverKey, authMessage).toString('base64')}`;
  }
}
