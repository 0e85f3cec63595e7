import net from 'node:net';
import path from 'node:path';

/** How long {@link probePostgres} waits by default: enough for a remote server, short enough not to stall a run. */
export const DEFAULT_PROBE_TIMEOUT_MS = 1500;

/** What answered at an address: a PostgreSQL server, something else, or nothing (with the socket error code). */
export type ProbeResult =
  | { readonly answered: 'postgres' }
  | { readonly answered: 'other' }
  | { readonly answered: 'nothing'; readonly code: string };

// SSLRequest: length 8, code 80877103. Every PostgreSQL answers it with one byte, 'S' or 'N', before any
// authentication, so this identifies a server without credentials and without a log line on its side.
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * Asks whether a PostgreSQL server answers at `host:port`, without logging in. A `host` starting with `/`
 * is a Unix-socket directory: the socket `<host>/.s.PGSQL.<port>` is probed.
 *
 * @example
 * ```ts
 * const probe = await probePostgres('localhost', 5432);
 * if (probe.answered === 'postgres') console.log('a server is running');
 * ```
 */
export function probePostgres(
  host: string,
  port: number,
  timeoutMs = DEFAULT_PROBE_TIMEOUT_MS,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    // A host starting with "/" is a Unix-socket directory, as in libpq and node-postgres.
    const socket = host.startsWith('/')
      ? net.connect({ path: path.join(host, `.s.PGSQL.${port}`) })
      : net.connect({ host, port });
    const finish = (result: ProbeResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => finish({ answered: 'nothing', code: 'ETIMEDOUT' }));
    socket.once('connect', () => socket.write(SSL_REQUEST));
    socket.once('data', (data) => {
      const reply = String.fromCharCode(data[0] ?? 0);
      finish({ answered: reply === 'S' || reply === 'N' ? 'postgres' : 'other' });
    });
    socket.once('end', () => finish({ answered: 'other' }));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish({ answered: 'nothing', code: error.code ?? error.message }),
    );
  });
}
