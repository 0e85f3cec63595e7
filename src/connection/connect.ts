import pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import { maskSecrets } from '../config/mask-secrets.js';
import { ConnectionError } from '../errors.js';

/** Which configured database a connection is for; production connections are always read-only. */
export type TargetRole = 'production' | 'test' | 'admin';

const SETTINGS: Record<TargetRole, { server: string; database: string; user: string; password: string }> = {
  production: { server: 'DB_HOST / DB_PORT', database: 'DB_NAME', user: 'DB_USER', password: 'DB_PASS' },
  test: {
    server: 'TEST_DB_HOST / TEST_DB_PORT',
    database: 'TEST_DB_NAME',
    user: 'TEST_DB_USER',
    password: 'TEST_DB_PASS',
  },
  admin: {
    server: 'TEST_DB_ADMIN_URL',
    database: 'TEST_DB_ADMIN_URL',
    user: 'TEST_DB_ADMIN_URL',
    password: 'TEST_DB_ADMIN_URL',
  },
};

/**
 * Settings for a pg client or pool on `target`. Production sessions start with
 * `default_transaction_read_only = on`, so nothing pgtwin runs there can write.
 */
export function connectionConfig(
  target: DatabaseTarget,
  role: TargetRole,
  extra: pg.ClientConfig = {},
): pg.ClientConfig {
  const config = target.clientConfig({ connectionTimeoutMillis: 10_000, ...extra });
  if (role === 'production') {
    config.options = `${config.options ?? ''} -c default_transaction_read_only=on`.trim();
  }
  return config;
}

/** Opens one client to `target`; failures become a {@link ConnectionError} naming the setting to change. */
export async function connect(
  target: DatabaseTarget,
  role: TargetRole,
  extra: pg.ClientConfig = {},
): Promise<pg.Client> {
  const client = new pg.Client(connectionConfig(target, role, extra));
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw connectionError(error, target, role);
  }
  return client;
}

/** Translates a driver error raised while connecting into a message that says what to change. */
export function connectionError(error: unknown, target: DatabaseTarget, role: TargetRole): ConnectionError {
  const err = error as { code?: string; message?: string };
  const settings = SETTINGS[role];
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
    default:
      advice = `Check ${settings.server} and the credentials.`;
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
