import { lookup } from 'node:dns/promises';

/** A host and port as configured: a host name, an IP address, or a Unix socket directory. */
export interface Address {
  readonly host: string;
  readonly port: number | string;
}

const LOOPBACK_ADDRESSES = ['127.0.0.1', '::1'];

/**
 * Whether `host` reaches this machine's own server: `localhost`, 127.0.0.0/8, `::1`, or a Unix socket
 * directory (a path). A socket in a directory and a loopback TCP address on the same port reach the same
 * local server: PostgreSQL names its socket after the port it listens on (`.s.PGSQL.<port>`).
 */
export function isLocalHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return (
    name === 'localhost' ||
    name === '::1' ||
    name.startsWith('/') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
  );
}

/**
 * Whether two addresses are the same as written, without asking DNS: the same port, and the same host name
 * (in any case) or both local ({@link isLocalHost}). For decisions that cannot wait for a lookup.
 */
export function sameAddressByName(a: Address, b: Address): boolean {
  if (Number(a.port) !== Number(b.port)) return false;
  return a.host.toLowerCase() === b.host.toLowerCase() || (isLocalHost(a.host) && isLocalHost(b.host));
}

/**
 * Whether two addresses reach the same server, for when the server cannot be asked: {@link sameAddressByName},
 * or host names resolving to a shared address (the loopback addresses counting as one).
 */
export async function sameAddress(a: Address, b: Address): Promise<boolean> {
  if (Number(a.port) !== Number(b.port)) return false;
  if (sameAddressByName(a, b)) return true;
  const [left, right] = await Promise.all([resolveAll(a.host), resolveAll(b.host)]);
  return left.some((address) => right.includes(address));
}

async function resolveAll(host: string): Promise<string[]> {
  if (isLocalHost(host)) return LOOPBACK_ADDRESSES;
  try {
    const addresses = (await lookup(host, { all: true })).map((entry) => entry.address);
    return addresses.some(isLocalHost) ? [...addresses, ...LOOPBACK_ADDRESSES] : addresses;
  } catch {
    return [host];
  }
}
