import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { sameAddressByName, type Address } from '../connection/same-address.js';
import { isExempt } from './exemption.js';
import { checkPgInternals, clientInternals, type ClientInternals } from './pg-internals.js';
import { guardPoolConnect } from './pool-guard.js';
import type { TestSession } from './test-session.js';
import { connectVirtual, endVirtual, queryVirtual, transactionStatusOf } from './virtual-client.js';

interface Registration {
  readonly session: TestSession;
  /** Whether the session takes over every client of its database, or only clients bound to it. */
  readonly implicit: boolean;
}

type Method = (this: pg.Client, ...args: unknown[]) => unknown;

const registrations = new Set<Registration>();
/** Each client's session, decided when it is first used; `null` for a client left alone. */
const routes = new WeakMap<object, TestSession | null>();
const bound = new WeakMap<object, TestSession>();
/** Other addresses that reach a session's database: its wire endpoint. */
const aliases = new WeakMap<TestSession, Address[]>();
let uninstall: (() => void) | undefined;

/**
 * Routes application clients to `session` until the returned function is called. The first registration
 * patches `pg.Client.prototype` (`connect`, `query`, `end`) and pg-pool's `connect`, in pgtwin's copy of
 * `pg` and in the application's if that is another copy; the last one to go restores them.
 */
export function registerSession(session: TestSession, implicit: boolean): () => void {
  const registration: Registration = { session, implicit };
  uninstall ??= install();
  registrations.add(registration);
  return () => {
    registrations.delete(registration);
    if (registrations.size === 0) {
      uninstall?.();
      uninstall = undefined;
    }
  };
}

/** Routes `client` to `session` whether or not the session takes over clients implicitly. */
export function bindClient(client: pg.Client, session: TestSession): void {
  bound.set(client, session);
}

/**
 * Takes over clients of `session`'s database that connect to `address` too (its wire endpoint): they run on
 * the session's connection directly, as clients of the database's own address do, without the extra hop.
 */
export function addSessionAddress(session: TestSession, address: Address): void {
  aliases.set(session, [...(aliases.get(session) ?? []), address]);
}

/** Whether `client` runs on a session's connection instead of a socket of its own. */
export function isVirtualClient(client: object): boolean {
  return Boolean(routes.get(client));
}

function routeOf(client: pg.Client): TestSession | undefined {
  let route = routes.get(client);
  if (route === undefined || route?.closed) {
    const next = decide(client);
    // A client of a closed session keeps it (and fails clearly) unless another session takes it over.
    if (route === undefined || next) route = next;
    routes.set(client, route);
  }
  return route ?? undefined;
}

/**
 * The session a client with a real connection of its own joins for one statement: a client of the test
 * database connected before isolation began (a module-level pool used at import time) still runs the
 * statements issued inside a test in the test's transaction. Outside tests, and while it has a real
 * transaction of its own open, it uses its own connection.
 */
function adoptedRoute(client: pg.Client, getStatus: Method): TestSession | undefined {
  if (isExempt(client) || routes.get(client) !== null) return undefined;
  const state = clientInternals(client);
  if (!state._connected || state._ending || getStatus.apply(client) !== 'I') return undefined;
  for (const { session, implicit } of registrations) {
    if (implicit && !session.closed && session.inTest && reachesSession(state.connectionParameters, session))
      return session;
  }
  return undefined;
}

function decide(client: pg.Client): TestSession | null {
  if (isExempt(client)) return null;
  const binding = bound.get(client);
  if (binding) return binding;
  const state = clientInternals(client);
  if (state._connecting || state._connected) return null;
  for (const { session, implicit } of registrations) {
    if (implicit && !session.closed && reachesSession(state.connectionParameters, session)) return session;
  }
  return null;
}

/** The same database on the same server as written: asking DNS is not possible where a client is routed. */
function reachesSession(params: ClientInternals['connectionParameters'], session: TestSession): boolean {
  if (params.database !== session.target.database) return false;
  const address = { ...params, host: String(params.host) };
  return [session.target, ...(aliases.get(session) ?? [])].some((target) =>
    sameAddressByName(address, target),
  );
}

function install(): () => void {
  const copies = pgCopies();
  for (const { copy, version } of copies) checkPgInternals(copy, version);
  const restores = copies.flatMap(({ copy }) => [
    patchClient(copy.Client.prototype),
    patchPool(copy.Pool.prototype),
  ]);
  return () => restores.forEach((restore) => restore());
}

/** pgtwin's own `pg` and, when it resolves to another copy, the application's; each with its version. */
function pgCopies(): Array<{ copy: typeof pg; version: string }> {
  const copies = [{ copy: pg, version: versionOf(createRequire(import.meta.url)) }];
  try {
    const appRequire = createRequire(path.join(process.cwd(), 'package.json'));
    const appPg = appRequire('pg') as typeof pg;
    if (appPg.Client.prototype !== pg.Client.prototype)
      copies.push({ copy: appPg, version: versionOf(appRequire) });
  } catch {
    // The application does not depend on pg itself.
  }
  return copies;
}

function versionOf(require: NodeJS.Require): string {
  try {
    return (require('pg/package.json') as { version: string }).version;
  } catch {
    return '(version unknown)';
  }
}

function patchClient(prototype: object): () => void {
  const target = prototype as Record<
    'connect' | 'query' | 'end' | 'ref' | 'unref' | 'getTransactionStatus',
    Method
  >;
  const original = {
    connect: target.connect,
    query: target.query,
    end: target.end,
    ref: target.ref,
    unref: target.unref,
    getTransactionStatus: target.getTransactionStatus,
  };
  target.connect = function (this: pg.Client, ...args: unknown[]) {
    const session = routeOf(this);
    if (!session) return original.connect.apply(this, args);
    return connectVirtual(this, session, args[0] as Parameters<typeof connectVirtual>[2]);
  };
  target.query = function (this: pg.Client, ...args: unknown[]) {
    const session = routeOf(this) ?? adoptedRoute(this, original.getTransactionStatus);
    if (!session) return original.query.apply(this, args);
    return queryVirtual(this, session, args[0], args[1], args[2]);
  };
  target.end = function (this: pg.Client, ...args: unknown[]) {
    const session = routeOf(this);
    if (!session) return original.end.apply(this, args);
    return endVirtual(this, session, args[0] as () => void);
  };
  // A virtual client's socket never connects; pg-pool's ref()/unref() on it would pile up listeners.
  target.ref = function (this: pg.Client, ...args: unknown[]) {
    if (!routeOf(this)) return original.ref.apply(this, args);
  };
  target.unref = function (this: pg.Client, ...args: unknown[]) {
    if (!routeOf(this)) return original.unref.apply(this, args);
  };
  target.getTransactionStatus = function (this: pg.Client) {
    const session = routeOf(this) ?? adoptedRoute(this, original.getTransactionStatus);
    return session ? transactionStatusOf(this, session) : original.getTransactionStatus.apply(this);
  };
  return () => Object.assign(target, original);
}

function patchPool(poolPrototype: object): () => void {
  let owner = poolPrototype as Record<string, unknown>;
  while (!Object.prototype.hasOwnProperty.call(owner, 'connect'))
    owner = Object.getPrototypeOf(owner) as Record<string, unknown>;
  const original = owner.connect as Parameters<typeof guardPoolConnect>[0];
  owner.connect = guardPoolConnect(original, isVirtualClient, waitTimeoutFor);
  return () => (owner.connect = original);
}

function waitTimeoutFor(): number {
  let timeout = 0;
  for (const { session } of registrations) timeout = Math.max(timeout, session.waitTimeoutMs);
  return timeout;
}
