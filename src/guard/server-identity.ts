import type pg from 'pg';

/** What tells one PostgreSQL server from another, whatever host name, socket or pooler reached it. */
export interface ServerIdentity {
  /** `pg_control_system().system_identifier`, when the role may read it. */
  systemId: string | null;
  /** Postmaster start time and port: unique per running server, readable by every role. */
  instance: string;
}

/** One database as the server itself names it: the ground truth a guard compares, not configured names. */
export interface DatabaseIdentity {
  server: ServerIdentity;
  /** The database's OID on that server. */
  oid: number;
  /** Its name on the server (`current_database()` for a connection). */
  name: string;
  /** Its comment, where pgtwin's marker lives. */
  comment: string | null;
}

/** The select-list item that reads {@link ServerIdentity.instance}, for queries that read it beside other columns. */
export const INSTANCE_COLUMN = `pg_catalog.pg_postmaster_start_time()::text || ' port ' || pg_catalog.current_setting('port') AS instance`;
const SERVER_COLUMNS = INSTANCE_COLUMN;
const DATABASE_COLUMNS = `d.oid::int8::text AS oid, d.datname AS name, shobj_description(d.oid, 'pg_database') AS comment`;

/** Reads the identity of the server `client` is connected to. */
export async function readServerIdentity(client: pg.ClientBase): Promise<ServerIdentity> {
  const { rows } = await client.query<{ instance: string }>(`SELECT ${SERVER_COLUMNS}`);
  return { systemId: await readSystemId(client), instance: rows[0]!.instance };
}

/** The database `client` actually reached, whatever name it asked for. */
export async function readReachedDatabase(client: pg.ClientBase): Promise<DatabaseIdentity> {
  const { rows } = await client.query<{
    instance: string;
    oid: string;
    name: string;
    comment: string | null;
  }>(`SELECT ${SERVER_COLUMNS}, ${DATABASE_COLUMNS} FROM pg_database d WHERE d.datname = current_database()`);
  const row = rows[0]!;
  return {
    server: { systemId: await readSystemId(client), instance: row.instance },
    oid: Number(row.oid),
    name: row.name,
    comment: row.comment,
  };
}

/** The database called `name` on the server `client` is connected to, or `undefined` when there is none. */
export async function readNamedDatabase(
  client: pg.ClientBase,
  name: string,
): Promise<DatabaseIdentity | undefined> {
  const { rows } = await client.query<{
    instance: string;
    oid: string;
    name: string;
    comment: string | null;
  }>(`SELECT ${SERVER_COLUMNS}, ${DATABASE_COLUMNS} FROM pg_database d WHERE d.datname = $1`, [name]);
  const row = rows[0];
  if (!row) return undefined;
  return {
    server: { systemId: await readSystemId(client), instance: row.instance },
    oid: Number(row.oid),
    name: row.name,
    comment: row.comment,
  };
}

async function readSystemId(client: pg.ClientBase): Promise<string | null> {
  try {
    const result = await client.query<{ id: string }>(
      'SELECT system_identifier::text AS id FROM pg_control_system()',
    );
    return result.rows[0]?.id ?? null;
  } catch {
    // Restricted to superusers and pg_monitor on some servers; the instance string still identifies it.
    return null;
  }
}

/**
 * How two identities are the same server, for a message (`undefined`: they are not). A shared system
 * identifier (a replica or a restored copy) counts as the same: refusing is the safe side.
 */
export function sameServerBy(a: ServerIdentity, b: ServerIdentity): string | undefined {
  if (a.systemId !== null && b.systemId !== null && a.systemId === b.systemId)
    return `system identifier ${a.systemId}`;
  if (a.instance === b.instance) return `postmaster start time ${a.instance.replace(' port ', ' and port ')}`;
  return undefined;
}

/** Whether two identities are the same server. */
export function sameServer(a: ServerIdentity, b: ServerIdentity): boolean {
  return sameServerBy(a, b) !== undefined;
}
