import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { ConnectionError, ProductionGuardError } from '../errors.js';
import { readServerIdentity, sameAddress, sameServer, type ServerIdentity } from './server-identity.js';
import { readMarker } from './test-marker.js';

/** Proof that the guard cleared `target` for a destructive `operation`; destructive code asks for one. */
export class GuardedTarget {
  readonly #brand = true;
  private constructor(
    readonly target: DatabaseTarget,
    readonly operation: string,
  ) {}

  /** @internal */
  static issue(target: DatabaseTarget, operation: string): GuardedTarget {
    return new GuardedTarget(target, operation);
  }

  /** Always true; lets code assert it holds a real token. */
  get cleared(): boolean {
    return this.#brand;
  }
}

export interface GuardRequest {
  config: ResolvedConfig;
  /** The database the operation will change. */
  target: DatabaseTarget;
  /** What will be done, for the message: `reset`, `drop`, `seed`, `restore`, ... */
  operation: string;
  /** A client already connected to the target's server (any database there), to avoid a new connection. */
  serverClient?: pg.ClientBase;
  /** The target may not exist yet (provisioning creates it). */
  creating?: boolean;
}

const productionIdentities = new WeakMap<ResolvedConfig, Promise<ServerIdentity | undefined>>();

/**
 * The one gate every destructive operation passes. Refuses, with a {@link ProductionGuardError} and before
 * anything changes, a target that is the production database (same server by identity, whatever host name
 * reached it, and same database name) and a database that does not carry pgtwin's marker (unless
 * `PGTWIN_ALLOW_UNMARKED=1`).
 *
 * @example
 * ```ts
 * const cleared = await guardDestructive({ config, target: config.test, operation: 'reset' });
 * ```
 */
export async function guardDestructive(request: GuardRequest): Promise<GuardedTarget> {
  const { config, target, operation } = request;
  const production = config.production;
  const refuseProduction = (how: string): never => {
    throw new ProductionGuardError(
      target.database,
      'is-production',
      `Refused to ${operation} ${target.describe()}: it is the production database (${how}). ` +
        `pgtwin only ever reads production. Point TEST_DB_NAME / TEST_DB_HOST (or TEST_DATABASE_URL) at a separate test database.`,
    );
  };

  if (target.database === production.database && (await sameAddress(target, production))) {
    refuseProduction(`same name "${target.database}" on the same address as DB_HOST:DB_PORT`);
  }

  const ownClient = request.serverClient
    ? undefined
    : await connectToTargetServer(config, target, request.creating);
  const client = request.serverClient ?? ownClient!;
  try {
    if (target.database === production.database) {
      const productionIdentity = await identityOfProduction(config);
      if (productionIdentity && sameServer(productionIdentity, await readServerIdentity(client))) {
        refuseProduction(
          `same server as ${production.host}:${production.port}, identified by its system identifier`,
        );
      }
    }
    const marker = await readMarker(client, target.database);
    if (marker === null && !config.allowUnmarked) {
      throw new ProductionGuardError(
        target.database,
        'unmarked',
        `Refused to ${operation} ${target.describe()}: the database was not created by pgtwin (it carries no pgtwin marker), ` +
          `so it may hold data that matters. Point TEST_DB_NAME at a database pgtwin creates, drop this one, ` +
          `or set PGTWIN_ALLOW_UNMARKED=1 if you are sure it is disposable.`,
      );
    }
    return GuardedTarget.issue(target, operation);
  } finally {
    await ownClient?.end();
  }
}

/** Refuses destructive work on a connection that was opened to production. */
export function refuseProductionConnection(operation: string, database: string): never {
  throw new ProductionGuardError(
    database,
    'production-connection',
    `Refused to ${operation}: this connection is to production (${database}), which pgtwin only reads. ` +
      `Use the test database, e.g. new DBOperator({ testMode: 'e2e' }).`,
  );
}

async function connectToTargetServer(
  config: ResolvedConfig,
  target: DatabaseTarget,
  creating?: boolean,
): Promise<pg.Client> {
  try {
    return await connect(target, 'test');
  } catch (error) {
    // A database that does not exist yet, or a role not created yet: ask the server through the admin connection.
    if (!(error instanceof ConnectionError) || !creating) throw error;
    return connect(config.admin, 'admin');
  }
}

function identityOfProduction(config: ResolvedConfig): Promise<ServerIdentity | undefined> {
  let identity = productionIdentities.get(config);
  if (!identity) {
    identity = (async () => {
      let client: pg.Client;
      try {
        client = await connect(config.production, 'production');
      } catch {
        // Unreachable production: the address comparison above is all that can be checked.
        return undefined;
      }
      try {
        return await readServerIdentity(client);
      } finally {
        await client.end();
      }
    })();
    productionIdentities.set(config, identity);
  }
  return identity;
}
