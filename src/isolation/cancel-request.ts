import type pg from 'pg';
import { clientInternals, protocolConnection } from './pg-internals.js';

/** How long to wait for the server to take a cancel request before giving up on it. */
const CANCEL_REQUEST_TIMEOUT_MS = 2_000;

/**
 * Asks the server to cancel the statement `client`'s backend is running, with the protocol's CancelRequest
 * (a short socket that opens no session), and resolves once the server has taken it (it closes the socket).
 * The caller sends nothing else on `client` until its running statement has answered, so that the cancel
 * cannot reach a later statement. Resolves, never rejects: a cancel that fails leaves the statement running.
 */
export function sendCancelRequest(client: pg.Client): Promise<void> {
  const { processID, secretKey, connectionParameters } = clientInternals(client);
  const { host, port, ssl } = connectionParameters;
  if (processID === null || secretKey === null) return Promise.resolve();
  return new Promise((resolve) => {
    const connection = protocolConnection(ssl);
    const timer = setTimeout(() => connection.stream.destroy(), CANCEL_REQUEST_TIMEOUT_MS);
    connection.on('error', () => undefined);
    connection.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    connection.once(ssl ? 'sslconnect' : 'connect', () => connection.cancel(processID, secretKey));
    if (host.startsWith('/')) connection.connect(`${host}/.s.PGSQL.${port}`);
    else connection.connect(port, host);
  });
}
