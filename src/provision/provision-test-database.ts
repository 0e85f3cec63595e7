import type pg from 'pg';
import { ENV_NAMES } from '../config/env-names.js';
import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { configFrom, type ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { serverVersion } from '../connection/server-version.js';
import { ProvisionError } from '../errors.js';
import { guardDestructive } from '../guard/production-guard.js';
import { newMarker } from '../guard/test-marker.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { TwinDatabases } from './twin-databases.js';

/** What {@link provisionTestDatabase} changed; empty `changes` means everything was already in place. */
export interface ProvisionResult {
  databaseCreated: boolean;
  roleCreated: boolean;
  /** One line per change made, e.g. `created role test_runner_user`. */
  changes: string[];
}

/**
 * Makes sure the test database and its role exist on the test server: creates the role (`TEST_DB_USER`,
 * with `TEST_DB_PASS`, stamped {@link ROLE_STAMP}) and the database it owns, stamped with pgtwin's marker,
 * and gives the role full rights on the `public` schema. Idempotent: a second call changes nothing. Goes
 * through the production guard first. When the role no longer logs in with `TEST_DB_PASS`, a role pgtwin
 * created gets the configured password; any other role is refused with a `ProvisionError` naming
 * `TEST_DB_PASS`, before anything is changed.
 *
 * @example
 * ```ts
 * const { changes } = await provisionTestDatabase(); // resolves the configuration itself
 * await provisionTestDatabase(await resolveConfig({ rootDir })); // or takes one
 * ```
 */
export async function provisionTestDatabase(
  configOrOptions?: ResolvedConfig | ResolveConfigOptions,
  options: { logger?: Logger } = {},
): Promise<ProvisionResult> {
  const { result, session } = await provisionWithSession(await configFrom(configOrOptions), options);
  await session?.end().catch(() => undefined);
  return result;
}

/**
 * {@link provisionTestDatabase} on `admin`, a session on the admin target the caller keeps (default: one of
 * its own), handing over the test role's session on the test database it judged last (absent when the
 * database was just created or the role's password just set): the run's setup goes on with it rather than
 * opening another. The caller ends it.
 *
 * @internal
 */
export async function provisionWithSession(
  config: ResolvedConfig,
  options: { logger?: Logger; admin?: pg.ClientBase } = {},
): Promise<{ result: ProvisionResult; session: pg.Client | undefined }> {
  const logger = options.logger ?? silentLogger;
  const { test } = config;
  const databases = await TwinDatabases.open(config, options.admin);
  const admin = await databases.admin();
  const changes: string[] = [];
  const result: ProvisionResult = { databaseCreated: false, roleCreated: false, changes };
  let session: pg.Client | undefined;
  try {
    await guardDestructive({
      config,
      admin,
      database: test.database,
      operation: 'provision',
      creating: true,
    });
    const rights = await adminRights(admin);
    const role = admin.escapeIdentifier(test.user);
    const existing = await admin.query<{ rolcanlogin: boolean; stamp: string | null }>(
      `SELECT rolcanlogin, shobj_description(oid, 'pg_authid') AS stamp FROM pg_roles WHERE rolname = $1`,
      [test.user],
    );
    // Before anything changes: a role that no longer takes the configured password would fail every test.
    let passwordChanged = false;
    if (existing.rows[0]?.rolcanlogin === true) {
      const login = await testRoleLogin(config, config.admin.database);
      passwordChanged = login.passwordRejected;
      session = login.session;
    }
    if (passwordChanged && !existing.rows[0]!.stamp?.startsWith(ROLE_STAMP)) {
      throw new ProvisionError(
        'TEST_DB_PASS',
        `The role "${test.user}" exists but refuses the configured password (${test.settings.password ?? 'TEST_DB_PASS'}). ` +
          `pgtwin did not create this role, so it leaves the role as it is. Set ${test.settings.password ?? 'TEST_DB_PASS'} ` +
          `to the role's password, or give the role the configured one yourself (ALTER ROLE "${test.user}" PASSWORD '...').`,
      );
    }

    for (const name of await databases.cleanLeftovers(logger))
      changes.push(`dropped ${name}, left by a run that did not finish`);

    if (existing.rows.length === 0) {
      requireRight(rights.createrole, 'CREATEROLE', config, `create the role "${test.user}"`);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD ${admin.escapeLiteral(test.password)}`);
      // The stamp lets a later run tell its own role (whose password it may change) from a user's.
      await admin.query(
        `COMMENT ON ROLE ${role} IS ${admin.escapeLiteral(`${ROLE_STAMP} created ${new Date().toISOString()}`)}`,
      );
      result.roleCreated = true;
      changes.push(`created role ${test.user}`);
    } else if (passwordChanged) {
      requireRight(rights.createrole, 'CREATEROLE', config, `change the password of the role "${test.user}"`);
      await admin.query(`ALTER ROLE ${role} PASSWORD ${admin.escapeLiteral(test.password)}`);
      changes.push(
        `changed the password of role ${test.user} to the configured one (${test.settings.password ?? 'TEST_DB_PASS'})`,
      );
    } else if (!existing.rows[0]!.rolcanlogin) {
      requireRight(rights.createrole, 'CREATEROLE', config, `allow the role "${test.user}" to log in`);
      await admin.query(`ALTER ROLE ${role} LOGIN`);
      changes.push(`allowed role ${test.user} to log in`);
    }
    if (!rights.superuser) {
      // Outside superuser, CREATE DATABASE ... OWNER needs membership in the owning role.
      await admin.query(`GRANT ${role} TO CURRENT_USER`).catch(() => undefined);
    }

    if ((await databases.marker(test.database)) === undefined) {
      requireRight(rights.createdb, 'CREATEDB', config, `create the database "${test.database}"`);
      await databases.create(test.database, { marker: newMarker('test') });
      result.databaseCreated = true;
      changes.push(`created database ${test.database} owned by ${test.user}`);
    } else {
      const { rows } = await admin.query<{ owner: string }>(
        'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
        [test.database],
      );
      if (rows[0]!.owner !== test.user) {
        await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(test.database)} OWNER TO ${role}`);
        changes.push(`made ${test.user} the owner of ${test.database}`);
      }
    }
    await grantSchemaRights(config, changes, session);
    // The tests reach it by name as the test role, maybe through a pooler mapping names elsewhere.
    session ??= await connect(test, 'test');
    await guardDestructive({ config, client: session, operation: 'provision' });
    await grantReplicaRole(admin, rights.superuser, test.user, changes);
    logger.debug(
      `provision ${test.url()} as ${config.admin.url()}: ${changes.join('; ') || 'nothing to change'}`,
    );
    return { result, session };
  } catch (error) {
    await session?.end().catch(() => undefined);
    throw error;
  } finally {
    await databases.close();
  }
}

/**
 * The comment pgtwin puts on a role it creates (`COMMENT ON ROLE`): pgtwin may change that role's password
 * when `TEST_DB_PASS` changes, and `pgtwin gc --roles` may drop it. Roles without it are the user's.
 */
export const ROLE_STAMP = 'pgtwin:role';

/**
 * Whether the test role logs in with the configured password: on the test database (whose session is kept
 * for the caller), or on the admin's maintenance database while the test database does not exist. Only a
 * rejected password counts as no; anything else (pg_hba, a missing database) is left to the steps that need it.
 */
async function testRoleLogin(
  config: ResolvedConfig,
  fallbackDatabase: string,
): Promise<{ passwordRejected: boolean; session?: pg.Client }> {
  for (const database of [config.test.database, fallbackDatabase]) {
    try {
      const client = await connect(config.test.withDatabase(database), 'test', {
        connectionTimeoutMillis: 5000,
      });
      if (database === config.test.database) return { passwordRejected: false, session: client };
      await client.end();
      return { passwordRejected: false };
    } catch (error) {
      const code = ((error as Error).cause as { code?: string } | undefined)?.code;
      if (code === '28P01') return { passwordRejected: true };
      if (code !== '3D000') return { passwordRejected: false };
    }
  }
  return { passwordRejected: false };
}

/**
 * The role owns the database; owning `public` too lets it create, alter and drop everything in it. Read
 * through `session` (the test role's, on the test database) when there is one; an admin session is opened
 * only to change the owner.
 */
async function grantSchemaRights(
  config: ResolvedConfig,
  changes: string[],
  session: pg.ClientBase | undefined,
): Promise<void> {
  const { test } = config;
  const publicOwner = async (client: pg.ClientBase) =>
    (
      await client.query<{ owner: string }>(
        `SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'public'`,
      )
    ).rows[0]?.owner;
  const settled = (owner: string | undefined) =>
    owner === undefined || owner === test.user || owner === 'pg_database_owner';
  if (session && settled(await publicOwner(session))) return;
  const client = await connect(config.admin.withDatabase(test.database), 'admin');
  try {
    await guardDestructive({ config, client, database: test.database, operation: 'provision' });
    if (!settled(await publicOwner(client))) {
      await client.query(`ALTER SCHEMA public OWNER TO ${client.escapeIdentifier(test.user)}`);
      changes.push(`made ${test.user} the owner of schema public`);
    }
  } finally {
    await client.end();
  }
}

/**
 * Mirroring loads with `session_replication_role = replica` so production's values are not rewritten by
 * triggers; a role that is not superuser may set it only when granted (PostgreSQL 15 and later).
 */
async function grantReplicaRole(
  admin: pg.ClientBase,
  superuser: boolean,
  role: string,
  changes: string[],
): Promise<void> {
  const version = await serverVersion(admin);
  const { rows } = await admin.query<{ has: boolean | null; target_super: boolean }>(
    `SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = $1) AS target_super,
            ${version >= 150000 ? "has_parameter_privilege($1, 'session_replication_role', 'SET')" : 'NULL'} AS has`,
    [role],
  );
  const row = rows[0]!;
  if (row.target_super || version < 150000 || row.has) return;
  if (!superuser) {
    throw new ProvisionError(
      'SET session_replication_role',
      `The admin role lacks the right to grant SET ON PARAMETER session_replication_role to "${role}", which mirroring needs. ` +
        `Run as a superuser: GRANT SET ON PARAMETER session_replication_role TO "${role}", or set ${ENV_NAMES.admin.url} to a superuser.`,
    );
  }
  const grant = `GRANT SET ON PARAMETER session_replication_role TO ${admin.escapeIdentifier(role)}`;
  // Every role's right on the parameter lives in one row of a catalog the whole server shares: another run
  // granting it at the same moment, or a role being dropped, makes this fail with "tuple concurrently
  // updated" (an internal error, XX000), or, while the row is being created, with a duplicate key (23505).
  // PostgreSQL's answer is to try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query(grant);
      break;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if ((code !== 'XX000' && code !== '23505') || attempt === 8) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
    }
  }
  changes.push(`granted ${role} SET on session_replication_role`);
}

async function adminRights(client: pg.ClientBase) {
  const { rows } = await client.query<{ superuser: boolean; createdb: boolean; createrole: boolean }>(
    `SELECT rolsuper AS superuser, rolsuper OR rolcreatedb AS createdb, rolsuper OR rolcreaterole AS createrole
       FROM pg_roles WHERE rolname = current_user`,
  );
  return rows[0]!;
}

function requireRight(has: boolean, privilege: string, config: ResolvedConfig, purpose: string): void {
  if (has) return;
  const user = config.admin.user;
  throw new ProvisionError(
    privilege,
    `The admin role "${user}" lacks ${privilege}, needed to ${purpose}. ` +
      `Grant it (ALTER ROLE "${user}" ${privilege}) or set ${ENV_NAMES.admin.url} to a role that has it.`,
  );
}

/**
 * Drops the test database (never production: the guard decides first). Connections to it are closed.
 *
 * @example
 * await dropTestDatabase(config);
 */
export async function dropTestDatabase(
  configOrOptions?: ResolvedConfig | ResolveConfigOptions,
): Promise<boolean> {
  const config = await configFrom(configOrOptions);
  return TwinDatabases.use(config, async (databases) => {
    const exists = (await databases.marker(config.test.database)) !== undefined;
    await databases.drop(config.test.database);
    return exists;
  });
}
