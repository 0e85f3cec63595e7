import { availableParallelism } from 'node:os';
import type pg from 'pg';
import { isLocalHost } from '../connection/same-address.js';

/**
 * Session settings under which COPY text and row checksums are produced and read. Text COPY and `row::text`
 * render dates, intervals, floats, money and bytea according to these, so both ends of a copy (and every
 * checksum) must use the same values whatever the servers' or roles' defaults are.
 */
export const MIRROR_SESSION_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  client_encoding: 'UTF8',
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  // Any value above 0 prints the shortest text that reads back to the identical float.
  extra_float_digits: '1',
  bytea_output: 'hex',
  lc_monetary: 'C',
  xmloption: 'content',
  // Values of reg* types print schema-qualified, so they read back to the same object.
  search_path: 'pg_catalog',
});

/**
 * How many sessions on one database read (or load) tables at once, each joined to one exported snapshot: the
 * mirror's load and the fingerprint's checksums. See {@link parallelSessions}.
 */
export const PARALLEL_SESSIONS = 4;

/**
 * How many sessions to work at once on the server at `host`: {@link PARALLEL_SESSIONS}, or this machine's
 * cores when the server runs here and has fewer. Each session is a server process busy with per-row work
 * (generated columns, checks, index builds) while Node relays the rows: more of them than cores only queue
 * for the CPU and the relation's extension lock. A cold build on the 2-core development machine took 3.2 s
 * with four sessions and 2.9 s with two. A remote server's cores are unknown: it gets the default.
 */
export function parallelSessions(host: string): number {
  return isLocalHost(host)
    ? Math.max(1, Math.min(PARALLEL_SESSIONS, availableParallelism()))
    : PARALLEL_SESSIONS;
}

/**
 * Opens the read-only REPEATABLE READ transaction all reads of one mirror operation share, so the
 * tables read are mutually consistent. Call on a client with no open transaction.
 */
export async function beginSnapshot(client: pg.ClientBase): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await applySessionSettings(client);
}

/**
 * Opens the snapshot transaction on `client` like {@link beginSnapshot} and exports it, so other sessions can
 * read the same state through {@link joinSnapshot}. The id is valid while this transaction stays open.
 */
export async function exportSnapshot(client: pg.ClientBase): Promise<string> {
  await beginSnapshot(client);
  const { rows } = await client.query<{ id: string }>('SELECT pg_catalog.pg_export_snapshot() AS id');
  return rows[0]!.id;
}

/**
 * Opens a read-only REPEATABLE READ transaction on `client` that sees exactly what the session that exported
 * `snapshot` ({@link exportSnapshot}) sees, under the mirror session settings.
 */
export async function joinSnapshot(client: pg.ClientBase, snapshot: string): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await client.query(`SET TRANSACTION SNAPSHOT ${client.escapeLiteral(snapshot)}`);
  await applySessionSettings(client);
}

/**
 * Opens the snapshot transaction on `client` in `snapshot` when given ({@link joinSnapshot}), else exports one
 * ({@link exportSnapshot}); returns the id the other sessions of the reading join.
 */
export async function shareSnapshot(client: pg.ClientBase, snapshot: string | undefined): Promise<string> {
  if (snapshot === undefined) return exportSnapshot(client);
  await joinSnapshot(client, snapshot);
  return snapshot;
}

/** A snapshot exported from a transaction kept open on a session of its own, for other sessions to join. */
export interface HeldSnapshot {
  /** The id {@link joinSnapshot} takes; valid until {@link release}. */
  readonly id: string;
  /** Ends the exporting transaction and its session. Idempotent. */
  release(): Promise<void>;
}

/**
 * Exports a snapshot from a read-only transaction on a session `open` returns, kept open until released, so
 * reads that start at different times see one state (the fingerprint's checksums and the copy of the rows
 * they name).
 */
export async function holdSnapshot(open: () => Promise<pg.Client>): Promise<HeldSnapshot> {
  const session = await open();
  // A session lost while held surfaces in its joiners, not as an unhandled 'error'.
  session.on('error', () => undefined);
  try {
    const id = await exportSnapshot(session);
    let released: Promise<void> | undefined;
    const release = () =>
      (released ??= session
        .query('COMMIT')
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => session.end().catch(() => undefined)));
    return { id, release };
  } catch (error) {
    await session.end().catch(() => undefined);
    throw error;
  }
}

/**
 * Sets `settings` for the rest of the current transaction: {@link MIRROR_SESSION_SETTINGS}, or the ones a
 * dump was written under.
 */
export async function applySessionSettings(
  client: pg.ClientBase,
  settings: Readonly<Record<string, string>> = MIRROR_SESSION_SETTINGS,
): Promise<void> {
  await client.query(
    `SELECT pg_catalog.set_config(name, setting, true) FROM unnest($1::text[], $2::text[]) AS s(name, setting)`,
    [Object.keys(settings), Object.values(settings)],
  );
}
