import type pg from 'pg';

/**
 * Ends `client` without waiting for the server to close the connection: a backend takes 10–20 ms to exit
 * (more on a busy machine), which a run need not wait for when nothing it does next needs the session gone —
 * not a lock the session holds, and not its database dropped or renamed (which would then find the backend
 * still there). The session's work is done, so a failure to end it is ignored, and so is an error the server
 * sends meanwhile: a backend terminated before it reads the goodbye (its database dropped `WITH (FORCE)`, an
 * administrator's `pg_terminate_backend`) reports `57P01`, which node-postgres emits as an 'error' event that,
 * with no listener, would crash the process.
 */
export function endSoon(client: pg.Client): void {
  client.on('error', () => undefined);
  client.end().catch(() => undefined);
}
