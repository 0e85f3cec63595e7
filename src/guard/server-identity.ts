import { lookup } from 'node:dns/promises';
import type pg from 'pg';

/** What tells one PostgreSQL server from another, whatever host name reached it. */
export interface ServerIdentity {
  /** `pg_control_system().system_identifier`, when the role may read it. */
  systemId: string | null;
  /** Postmaster start time and port: unique per running server, readable by every role. */
  instance: string;
}

/** Reads the identity of the server `client` is connected to. */
export async function readServerIdentity(client: pg.ClientBase): Promise<ServerIdentity> {
  const { rows } = await client.query<{ instance: string }>(
    `SELECT pg_postmaster_start_time()::text || ' port ' || current_setting('port') AS instance`,
  );
  let systemId: string | null = null;
  try {
    const result = await client.query<{ id: string }>(
      'SELECT system_identifier::text AS id FROM pg_control_system()',
    );
    systemId = result.rows[0]?.id ?? null;
  } catch {
    // Restricted to superusers and pg_monitor on some servers; the instance string still identifies it.
  }
  return { systemId, instance: rows[0]!.instance };
}

/** Whether two identities are the same server. A shared system identifier (a replica or a restored copy) counts as the same: refusing is the safe side. */
export function sameServer(a: ServerIdentity, b: ServerIdentity): boolean {
  if (a.systemId !== null && b.systemId !== null && a.systemId === b.systemId) return true;
  return a.instance === b.instance;
}

/** Whether two host/port pairs reach the same address, for when a server cannot be asked. */
export async function sameAddress(
  a: { host: string; port: number },
  b: { host: string; port: number },
): Promise<boolean> {
  if (a.port !== b.port) return false;
  if (a.host === b.host) return true;
  const [left, right] = await Promise.all([resolveAll(a.host), resolveAll(b.host)]);
  return left.some((address) => right.includes(address));
}

async function resolveAll(host: string): Promise<string[]> {
  if (host.startsWith('/')) return [host];
  const loopback = ['127.0.0.1', '::1'];
  try {
    const addresses = (await lookup(host, { all: true })).map((entry) => entry.address);
    // localhost may resolve to either loopback family; both reach the same local server.
    return addresses.some((address) => loopback.includes(address)) ? [...addresses, ...loopback] : addresses;
  } catch {
    return [host];
  }
}
