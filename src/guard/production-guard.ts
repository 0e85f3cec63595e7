import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import { ENV_NAMES } from '../config/env-names.js';
import { MAX_IDENTIFIER_BYTES, type ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { sameAddress } from '../connection/same-address.js';
import { ConnectionError, ProductionGuardError } from '../errors.js';
import {
  readNamedDatabase,
  readReachedDatabase,
  sameServerBy,
  type DatabaseIdentity,
} from './server-identity.js';
import { parseMarker, WIP_PREFIX } from './test-marker.js';

const { production: PROD, test: TEST } = ENV_NAMES;
const POINT_ELSEWHERE = `Point ${TEST.database} / ${TEST.host} (or ${TEST.url}) at a separate test database.`;

/** Proof that the guard cleared a database for a destructive `operation`; destructive code asks for one. */
export class GuardedTarget {
  readonly #brand = true;
  private constructor(
    /** The database's name on the server, as the server reported it. */
    readonly database: string,
    readonly operation: string,
  ) {}

  /** @internal */
  static issue(database: string, operation: string): GuardedTarget {
    return new GuardedTarget(database, operation);
  }

  /** Always true; lets code assert it holds a real token. */
  get cleared(): boolean {
    return this.#brand;
  }
}

interface GuardBase {
  config: ResolvedConfig;
  /** What will be done, for the message: `reset`, `drop`, `seed`, `restore`, ... */
  operation: string;
}

/**
 * What the guard judges, in one of three forms:
 * - `client`: the very connection that will run the destructive statements; the database it reached must be
 *   `database` (default: the configured test database);
 * - `admin` + `database`: a database named on the server `admin` is connected to, for statements run from
 *   another database (`CREATE`, `DROP`, `ALTER DATABASE … RENAME`);
 * - `target`: connects to `target` as its user and judges where that connection lands (a check ahead of the
 *   work; the work's own connection is judged again).
 */
export type GuardRequest = GuardBase &
  (
    | { client: pg.ClientBase; database?: string }
    | { admin: pg.ClientBase; database: string; creating?: boolean }
    | { target: DatabaseTarget; creating?: boolean }
  );

type ProductionIdentity = { known: true; identity: DatabaseIdentity } | { known: false; reason: string };

/** Keyed by the production target, which a configuration keeps when pointed at another test server. */
const productionIdentities = new WeakMap<DatabaseTarget, Promise<ProductionIdentity>>();

/**
 * The one gate every destructive operation passes. It judges the database actually reached, never the
 * configured names: on the connection given, it reads the server's identity (system identifier, else
 * postmaster start time and port), the database's name and OID, and compares them with production's, read
 * through a read-only production session. It refuses, with a {@link ProductionGuardError} and before anything
 * changes:
 * - the production database, whatever host names, sockets, ports or poolers lie in between;
 * - a connection that landed in another database than the one asked for (a pooler alias, a truncated name);
 * - a database without pgtwin's marker, unless `PGTWIN_ALLOW_UNMARKED=1`; when production's identity cannot
 *   be read (unreachable, login refused) and production is configured, the marker is required regardless.
 *
 * @example
 * ```ts
 * const client = await connect(config.test, 'test');
 * await guardDestructive({ config, client, operation: 'reset' });
 * ```
 */
export async function guardDestructive(request: GuardRequest): Promise<GuardedTarget> {
  const { config, operation } = request;
  if ('client' in request) {
    const expected = request.database ?? config.test.database;
    return judge(config, operation, await readReachedDatabase(request.client), expected);
  }
  if ('admin' in request) {
    refuseLongName(request.database, operation);
    const named = await readNamedDatabase(request.admin, request.database);
    if (named === undefined) {
      if (request.creating) return GuardedTarget.issue(request.database, operation);
      throw new ProductionGuardError(
        request.database,
        'missing',
        `Refused to ${operation} the database "${request.database}": it does not exist on the server.`,
      );
    }
    return judge(config, operation, named, request.database);
  }
  const { target } = request;
  refuseLongName(target.database, operation);
  // Refused before connecting when the configuration itself names production: no connection is needed to know.
  if (target.database === config.production.database && (await sameAddress(target, config.production))) {
    throw new ProductionGuardError(
      target.database,
      'is-production',
      `Refused to ${operation} the database "${target.database}": it is the production database ` +
        `(the same name on the same address as ${PROD.host}:${PROD.port}). pgtwin only ever reads production. ` +
        POINT_ELSEWHERE,
    );
  }
  let client: pg.Client;
  try {
    client = await connect(target, 'test');
  } catch (error) {
    // A database or role not created yet: ask the server about the name through the admin connection.
    if (!(error instanceof ConnectionError) || !request.creating) throw error;
    const admin = await connect(config.admin, 'admin');
    try {
      return await guardDestructive({ config, operation, admin, database: target.database, creating: true });
    } finally {
      await admin.end();
    }
  }
  try {
    return await guardDestructive({ config, operation, client, database: target.database });
  } finally {
    await client.end();
  }
}

async function judge(
  config: ResolvedConfig,
  operation: string,
  reached: DatabaseIdentity,
  expected: string,
): Promise<GuardedTarget> {
  const production = await productionIdentity(config);
  const what = `the database "${expected}"`;
  if (production.known) {
    const by = sameServerBy(reached.server, production.identity.server);
    if (by !== undefined && reached.oid === production.identity.oid) {
      throw new ProductionGuardError(
        expected,
        'is-production',
        `Refused to ${operation} ${what}: the server says it is the production database ` +
          `"${production.identity.name}" (same server by ${by}, same database OID ${reached.oid})` +
          (reached.name === expected ? '' : `, reached under the name "${expected}"`) +
          `. pgtwin only ever reads production. ${POINT_ELSEWHERE}`,
      );
    }
  }
  if (reached.name !== expected) {
    throw new ProductionGuardError(
      expected,
      'unexpected-database',
      `Refused to ${operation} ${what}: the connection landed in the database "${reached.name}" instead ` +
        '(a connection pooler alias, or a name the server truncated). pgtwin only changes the database it asked for. ' +
        `Point ${TEST.host} / ${TEST.port} at the PostgreSQL server itself, or ${TEST.database} at the real database name.`,
    );
  }
  const marked = parseMarker(reached.comment) !== null || reached.name.startsWith(WIP_PREFIX);
  if (!marked) {
    if (!production.known && productionConfigured(config)) {
      throw new ProductionGuardError(
        expected,
        'production-unknown',
        `Refused to ${operation} ${what}: it carries no pgtwin marker, and production's identity could not be read ` +
          `(${production.reason}), so pgtwin cannot tell it is not production. ${ENV_NAMES.allowUnmarked}=1 does not lift this. ` +
          `Fix the production settings (${PROD.host}, ${PROD.port}, ${PROD.database}, ${PROD.user}, ${PROD.password} or ${PROD.url}) so pgtwin can read it, ` +
          'or let pgtwin create the test database (drop this one, then run pgtwin setup).',
      );
    }
    if (!config.allowUnmarked) {
      throw new ProductionGuardError(
        expected,
        'unmarked',
        `Refused to ${operation} ${what}: the database was not created by pgtwin (it carries no pgtwin marker), ` +
          `so it may hold data that matters. Point ${TEST.database} at a database pgtwin creates, drop this one, ` +
          `or set ${ENV_NAMES.allowUnmarked}=1 if you are sure it is disposable.`,
      );
    }
  }
  return GuardedTarget.issue(reached.name, operation);
}

function refuseLongName(database: string, operation: string): void {
  const bytes = Buffer.byteLength(database);
  if (bytes <= MAX_IDENTIFIER_BYTES) return;
  throw new ProductionGuardError(
    database,
    'name-too-long',
    `Refused to ${operation} the database "${database}": its name is ${bytes} bytes, and PostgreSQL would truncate it ` +
      `to ${MAX_IDENTIFIER_BYTES}, reaching another database. Choose a name of at most ${MAX_IDENTIFIER_BYTES} bytes.`,
  );
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

/** Whether any production setting was given; with none, an unreachable default production is no evidence. */
function productionConfigured(config: ResolvedConfig): boolean {
  return Object.entries(config.sources).some(
    ([key, source]) => key.startsWith('production.') && source !== 'default',
  );
}

/**
 * Production's database as its own server names it, read once per configuration through a read-only session:
 * `session` when given (one the caller has open on production anyway, so the guard opens none of its own),
 * else one opened for it.
 */
export function productionIdentity(
  config: ResolvedConfig,
  session?: pg.ClientBase,
): Promise<ProductionIdentity> {
  let identity = productionIdentities.get(config.production);
  if (!identity) {
    identity = (async (): Promise<ProductionIdentity> => {
      if (session) return readIdentity(session);
      let client: pg.Client;
      try {
        client = await connect(config.production, 'production');
      } catch (error) {
        return { known: false, reason: (error as Error).message };
      }
      try {
        return await readIdentity(client);
      } finally {
        await client.end().catch(() => undefined);
      }
    })();
    productionIdentities.set(config.production, identity);
  }
  return identity;
}

async function readIdentity(client: pg.ClientBase): Promise<ProductionIdentity> {
  try {
    return { known: true, identity: await readReachedDatabase(client) };
  } catch (error) {
    return { known: false, reason: (error as Error).message };
  }
}
