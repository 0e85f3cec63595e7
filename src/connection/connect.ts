import pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import { ENV_NAMES } from '../config/env-names.js';
import { maskSecrets } from '../config/mask-secrets.js';
import { ConnectionError, ProductionGuardError } from '../errors.js';

/** Which configured database a connection is for; production connections are always read-only. */
export type TargetRole = 'production' | 'test' | 'admin';

const SETTINGS: Record<TargetRole, { server: string; database: string; user: string; password: string }> = {
  production: settingsOf(ENV_NAMES.production),
  test: settingsOf(ENV_NAMES.test),
  admin: {
    server: ENV_NAMES.admin.url,
    database: ENV_NAMES.admin.url,
    user: ENV_NAMES.admin.url,
    password: ENV_NAMES.admin.url,
  },
};

function settingsOf(names: { host: string; port: string; database: string; user: string; password: string }) {
  return {
    server: `${names.host} / ${names.port}`,
    database: names.database,
    user: names.user,
    password: names.password,
  };
}

/**
 * The settings to name in advice about `target`: where each of its fields was configured (an admin target
 * defaults to the test server's host and port and production's user and password, so a wrong `TEST_DB_PORT`
 * or `DB_PASS` is named as such), else the role's usual variables.
 */
function settingsFor(target: DatabaseTarget, role: TargetRole): (typeof SETTINGS)[TargetRole] {
  const given = target.settings;
  const fallback = SETTINGS[role];
  const server = [...new Set([given.host, given.port].filter((name): name is string => !!name))];
  return {
    server: server.length > 0 ? server.join(' / ') : fallback.server,
    database: given.database ?? fallback.database,
    user: given.user ?? fallback.user,
    password: given.password ?? fallback.password,
  };
}

/** The startup option that makes every transaction of a production session read-only. */
export const READ_ONLY_OPTION = '-c default_transaction_read_only=on';

/**
 * Settings for a pg client or pool on `target`. `extra.options` are added to the target's own, never put in
 * their place, and production sessions get {@link READ_ONLY_OPTION} last, so no option given before it
 * (`-c default_transaction_read_only=off` included) can switch it off.
 */
export function connectionConfig(
  target: DatabaseTarget,
  role: TargetRole,
  extra: pg.ClientConfig = {},
): pg.ClientConfig {
  const config = target.clientConfig({ connectionTimeoutMillis: 10_000, ...extra });
  if (role === 'production') config.options = `${config.options ?? ''} ${READ_ONLY_OPTION}`.trim();
  return config;
}

/**
 * Refuses a production session that can write: asks the server (`SHOW default_transaction_read_only`) rather
 * than trusting the settings sent, since a pooler or proxy may drop startup options.
 */
export async function assertReadOnly(client: pg.ClientBase, target: DatabaseTarget): Promise<void> {
  const { rows } = await client.query<{ default_transaction_read_only: string }>(
    'SHOW default_transaction_read_only',
  );
  const setting = rows[0]?.default_transaction_read_only;
  if (setting === 'on') return;
  throw new ProductionGuardError(
    target.database,
    'production-writable',
    `Refused a writable session to the production database ${target.describe()}: default_transaction_read_only is ` +
      `${setting ?? 'unknown'} although pgtwin asked for on. Something between pgtwin and the server dropped or ` +
      'overrode the startup option (a pooler such as PgBouncer that ignores startup parameters, or a proxy). ' +
      'Connect to production directly, or configure the pooler to pass options through.',
  );
}

/**
 * Opens one client to `target`; failures become a {@link ConnectionError} naming the setting to change.
 * Production sessions are checked to be read-only. With `sslmode=prefer`, a server without TLS is reached
 * unencrypted, as libpq does.
 */
export async function connect(
  target: DatabaseTarget,
  role: TargetRole,
  extra: pg.ClientConfig = {},
): Promise<pg.Client> {
  try {
    return await open(target, role, extra);
  } catch (error) {
    if (target.ssl.mode !== 'prefer' || !serverHasNoTls(error)) throw error;
    return open(target.withSsl({ mode: 'disable' }), role, extra);
  }
}

/** `target` with `sslmode=prefer` settled: TLS when the server offers it, else none (for pools). */
export async function settlePreferredTls(target: DatabaseTarget, role: TargetRole): Promise<DatabaseTarget> {
  if (target.ssl.mode !== 'prefer') return target;
  try {
    await (await open(target, role, {})).end();
    return target;
  } catch (error) {
    if (serverHasNoTls(error)) return target.withSsl({ mode: 'disable' });
    return target;
  }
}

function serverHasNoTls(error: unknown): boolean {
  const cause = error instanceof ConnectionError ? error.cause : error;
  return /does not support SSL/i.test((cause as Error | undefined)?.message ?? '');
}

async function open(target: DatabaseTarget, role: TargetRole, extra: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(connectionConfig(target, role, extra));
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw connectionError(error, target, role);
  }
  // A session the server ends while it is idle (a restart, idle_session_timeout, pg_terminate_backend) makes
  // node-postgres emit 'error'; without a listener that would crash the process. The session's next query
  // fails instead, with the cause.
  client.on('error', () => undefined);
  if (role === 'production') {
    try {
      await assertReadOnly(client, target);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  }
  return client;
}

/** Translates a driver error raised while connecting into a message that says what to change. */
/** SQLSTATE of a login refused for want of a connection slot (`too_many_connections`). */
const OUT_OF_CONNECTIONS = '53300';

/**
 * Whether `error` (a {@link ConnectionError} or what it wraps) is a login refused because the server, the role
 * or the database has no connection left: work spread over several sessions can go on with those it has.
 */
export function isOutOfConnections(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if ((cause as { code?: unknown }).code === OUT_OF_CONNECTIONS) return true;
  }
  return false;
}

export function connectionError(error: unknown, target: DatabaseTarget, role: TargetRole): ConnectionError {
  const err = error as { code?: string; message?: string };
  const settings = settingsFor(target, role);
  const where = `${role} database ${target.database} at ${target.host}:${target.port}`;
  const raw = maskSecrets(err.message ?? String(error), [target.password]);
  let advice: string;
  switch (err.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
      advice = `Nothing answers at ${target.host}:${target.port}. Start PostgreSQL there or change ${settings.server}.`;
      break;
    case '28P01':
      advice = `The password for user "${target.user}" was rejected. Change ${settings.password}.`;
      break;
    case '28000':
      advice = `User "${target.user}" may not log in here. Change ${settings.user} or the server's pg_hba.conf.`;
      break;
    case '3D000':
      advice = `The database "${target.database}" does not exist. Create it or change ${settings.database}.`;
      break;
    case OUT_OF_CONNECTIONS:
      advice = `The server has no connection left for "${target.user}" (max_connections, or the role's or database's CONNECTION LIMIT): close other sessions or raise the limit.`;
      break;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      advice = `The server's TLS certificate is not issued for "${target.host}" (sslmode=${target.ssl.mode} checks the host name). Connect by a name the certificate lists, or use sslmode=verify-ca to check the chain only.`;
      break;
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_HAS_EXPIRED':
      advice = `The server's TLS certificate could not be verified (sslmode=${target.ssl.mode}). Point sslrootcert (or ssl.rootCert) at the CA that signed it, or use sslmode=require to encrypt without verifying.`;
      break;
    default:
      advice = /does not support SSL/i.test(err.message ?? '')
        ? `The server does not offer TLS but sslmode=${target.ssl.mode} requires it. Enable ssl on the server, or set sslmode=prefer or disable.`
        : `Check ${settings.server} and the credentials.`;
  }
  const message = err.message?.includes('timeout')
    ? `Cannot connect to the ${where}: timed out. Start PostgreSQL there or change ${settings.server}.`
    : `Cannot connect to the ${where}: ${raw}. ${advice}`;
  return new ConnectionError(
    { host: target.host, port: target.port, database: target.database, user: target.user },
    message,
    { cause: error },
  );
}
