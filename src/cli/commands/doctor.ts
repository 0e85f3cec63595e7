import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import type { DatabaseTarget } from '../../config/database-target.js';
import { ENV_NAMES } from '../../config/env-names.js';
import { MASK } from '../../config/mask-secrets.js';
import { DEFAULT_ENV_FILES, DEFAULT_SEEDS } from '../../config/pgtwin-config.js';
import type { ResolvedConfig } from '../../config/resolve-config.js';
import { connect, type TargetRole } from '../../connection/connect.js';
import { ConfigError } from '../../errors.js';
import { guardDestructive } from '../../guard/production-guard.js';
import { sameAddress } from '../../connection/same-address.js';
import { TwinDatabases } from '../../provision/twin-databases.js';
import { CONTAINER_MODULE } from '../../provider/container-server.js';
import { locateEmbeddedBinaries } from '../../provider/embedded-binaries.js';
import { probePostgres } from '../../provider/probe-postgres.js';
import { gc } from '../../provision/gc.js';
import { checkConfiguredSeeds } from '../../seed/load-configured-seeds.js';
import type { Command, CommandContext } from '../command.js';
import { EXIT } from '../exit-codes.js';
import type { Mark } from '../terminal.js';

/** One line of the doctor's report. */
export interface DoctorCheck {
  name: string;
  status: Mark;
  message: string;
  /** Indented lines under the check (the config's values and their sources). */
  details?: string[];
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Check the configuration, servers, roles, the production guard and optional pieces',
  args: '',
  description:
    'Checks what pgtwin needs and explains each result on one line with a mark (✓ pass, ✗ fail, ! warning,\n' +
    '- information): the configuration and where each value came from (passwords masked), whether each\n' +
    "server answers and its version, the seed files (planned against production's structure, as a load\n" +
    "would, and nothing written), the admin and test roles' rights, whether the production guard would\n" +
    'allow a destructive operation on the test database, the optional embedded binaries and container\n' +
    'engine, and stale pgtwin databases. Changes nothing. Exit 1 when a check fails, 2 when the\n' +
    'configuration itself is invalid.',
  options: {},
  positionals: { min: 0, max: 0 },
  examples: ['pgtwin doctor', 'pgtwin doctor --env-file .env.ci --json'],
  async run(context) {
    const { terminal } = context;
    const checks: DoctorCheck[] = [];
    const report = (check: DoctorCheck) => {
      checks.push(check);
      terminal.print(`${terminal.mark(check.status)} ${check.name.padEnd(12)} ${check.message}`);
      for (const line of check.details ?? []) terminal.print(`    ${line}`);
    };

    let config: ResolvedConfig;
    try {
      config = await context.config();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      report({ name: 'config', status: 'fail', message: error.message });
      return { code: EXIT.usage, json: { ok: false, checks } };
    }
    report(configCheck(config, context));
    if (config.warnings.length > 0) {
      report({
        name: 'variables',
        status: 'warn',
        message: `${config.warnings.length} variable${config.warnings.length === 1 ? '' : 's'} pgtwin ignores look meant for it:`,
        details: [...config.warnings],
      });
    }
    await runChecks(config, report, context.io.env);
    const failed = checks.filter((check) => check.status === 'fail').length;
    const warned = checks.filter((check) => check.status === 'warn').length;
    terminal.print();
    terminal.print(
      failed > 0
        ? `${failed} check${failed === 1 ? '' : 's'} failed.`
        : `All checks passed${warned > 0 ? ` (${warned} warning${warned === 1 ? '' : 's'})` : ''}.`,
    );
    return { code: failed > 0 ? EXIT.failed : EXIT.ok, json: { checks } };
  },
};

async function runChecks(
  config: ResolvedConfig,
  report: (check: DoctorCheck) => void,
  env: Record<string, string | undefined>,
): Promise<void> {
  const needsProduction = config.source.dump === undefined;
  const production = await serverCheck('production', config.production, 'production', needsProduction, {
    server: 'DB_HOST / DB_PORT',
    reason: needsProduction ? undefined : `not needed: the twin is built from source.dump`,
  });
  report(production.check);
  report(
    production.client
      ? await seedsCheck(config, production.client)
      : {
          name: 'seeds',
          status: 'info',
          message: needsProduction
            ? 'not checked: they are planned against production, which did not answer'
            : 'checked when they load: the structure comes from source.dump',
        },
  );

  // Where the test database will live: the configured server, or one pgtwin starts.
  const probe = await probePostgres(config.test.host, config.test.port);
  const started =
    config.provider === 'embedded' ||
    config.provider === 'container' ||
    (config.provider === 'auto' && probe.answered !== 'postgres');
  let admin: Awaited<ReturnType<typeof serverCheck>> | undefined;
  const testReachable = probe.answered === 'postgres';
  if (started) {
    const provider = config.provider === 'container' ? 'container' : 'embedded';
    report({
      name: 'test server',
      status: 'info',
      message:
        config.provider === 'auto'
          ? `nothing answers at ${config.test.host}:${config.test.port} (TEST_DB_HOST / TEST_DB_PORT): provider auto will start embedded PostgreSQL`
          : `provider ${provider}: pgtwin starts the server at setup; its databases and roles are checked then`,
    });
  } else {
    report(
      testReachable
        ? {
            name: 'test server',
            status: 'pass',
            message: `PostgreSQL answers at ${config.test.host}:${config.test.port}`,
          }
        : {
            name: 'test server',
            status: 'fail',
            message:
              `${probe.answered === 'other' ? 'something that is not PostgreSQL answers' : `nothing answers (${probe.code})`} ` +
              `at ${config.test.host}:${config.test.port}. Start PostgreSQL there or change TEST_DB_HOST / TEST_DB_PORT.`,
          },
    );
    admin = await serverCheck('admin', config.admin, 'admin', true, {
      server: [...new Set([config.admin.settings.host, config.admin.settings.port])].join(' / '),
    });
    if (admin.client) {
      const rights = await adminRights(admin.client);
      admin.check.message += `, ${describeRights(rights)}`;
      if (!(await sameAddress(config.admin, config.test))) {
        admin.check.status = 'warn';
        admin.check.message +=
          `; but it is not the test database's server (${config.test.host}:${config.test.port}), and pgtwin ` +
          'creates the test database through it. Point TEST_DB_ADMIN_URL at the test server.';
      }
      admin.rights = rights;
    }
    report(admin.check);
  }

  try {
    if (admin?.client && admin.rights && testReachable) {
      // The guard first: advice to run setup is wrong for a test database that is production.
      const guard = await guardCheck(config, admin.client);
      report(await testRoleCheck(config, admin.client, admin.rights, guard.status !== 'fail'));
      report(await testSessionTls(config));
      report(versionCheck(production.version, admin.version));
      report(guard);
    } else if (!started && testReachable) {
      // No admin connection: the test role can still say whether it gets in.
      report(await directTestLogin(config));
    }

    const embeddedNeeded =
      config.provider === 'embedded' || (config.provider === 'auto' && probe.answered !== 'postgres');
    report(await embeddedCheck(embeddedNeeded));
    report(containerCheck(config.provider === 'container', env));

    if (admin?.client && testReachable) report(await staleCheck(config));
  } finally {
    await admin?.client?.end().catch(() => undefined);
    await production.client?.end().catch(() => undefined);
  }
}

/** The seed files, planned against production's structure: every mistake a load would report, now. */
async function seedsCheck(config: ResolvedConfig, production: pg.Client): Promise<DoctorCheck> {
  try {
    const check = await checkConfiguredSeeds(production, config);
    if (!check) {
      return { name: 'seeds', status: 'info', message: `none (${DEFAULT_SEEDS} does not exist)` };
    }
    const files = check.files.map((file) => path.relative(config.rootDir, file) || file);
    return {
      name: 'seeds',
      status: 'pass',
      message:
        `${files.join(', ')}: ${check.rows} rows planned against production's structure ` +
        `(where lookups outside the mirrored tables are checked when they load)`,
      details: Object.entries(check.tables).map(([table, rows]) => `${table}: ${rows}`),
    };
  } catch (error) {
    return { name: 'seeds', status: 'fail', message: (error as Error).message };
  }
}

function configCheck(config: ResolvedConfig, context: CommandContext): DoctorCheck {
  const envFiles = context.resolveOptions.envFiles ?? DEFAULT_ENV_FILES;
  const files = envFiles.map((file) => {
    const full = path.resolve(config.rootDir, file);
    return `${path.relative(config.rootDir, full) || full}${existsSync(full) ? '' : ' (absent)'}`;
  });
  const keys = Object.keys(config.sources);
  const width = Math.max(...keys.map((key) => key.length));
  const details = keys.map((key) => {
    const value = describeValue(config, key);
    return `${key.padEnd(width)}  ${value}  ← ${config.sources[key]}`;
  });
  return {
    name: 'config',
    status: 'pass',
    message:
      `valid; config file ${config.configFile ? path.relative(config.rootDir, config.configFile) || config.configFile : 'none'}, ` +
      `env files ${files.join(', ') || 'none'}, then the environment and defaults. Values and their sources:`,
    details,
  };
}

function describeValue(config: ResolvedConfig, key: string): string {
  if (key.endsWith('.password')) {
    const target = (config as unknown as Record<string, DatabaseTarget>)[key.split('.')[0]!];
    return target?.password ? MASK : '(empty)';
  }
  if (key === ENV_NAMES.allowUnmarked) return String(config.allowUnmarked);
  let value: unknown = config;
  for (const part of key.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  const show = (item: unknown): string =>
    typeof item === 'string' && path.isAbsolute(item) && item.startsWith(config.rootDir)
      ? path.relative(config.rootDir, item) || '.'
      : String(item);
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.map(show).join(', ');
  return value === undefined ? '(unset)' : show(value);
}

/** Whether a server answers at the target's address, and whether the target's login works there. */
async function serverCheck(
  name: string,
  target: DatabaseTarget,
  role: TargetRole,
  needed: boolean,
  hints: { server: string; reason?: string },
): Promise<{ check: DoctorCheck; client?: pg.Client; version?: string; rights?: AdminRights }> {
  const missing: Mark = needed ? 'fail' : 'info';
  const probe = await probePostgres(target.host, target.port);
  if (probe.answered !== 'postgres') {
    const what =
      probe.answered === 'other'
        ? 'something that is not PostgreSQL answers'
        : `nothing answers (${probe.code})`;
    return {
      check: {
        name,
        status: missing,
        message: hints.reason
          ? `${what} at ${target.host}:${target.port}; ${hints.reason}`
          : `${what} at ${target.host}:${target.port}. Start PostgreSQL there or change ${hints.server}.`,
      },
    };
  }
  let client: pg.Client;
  try {
    client = await connect(target, role, { connectionTimeoutMillis: 5000 });
  } catch (error) {
    return { check: { name, status: missing, message: (error as Error).message } };
  }
  let version: string;
  try {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    version = rows[0]!.server_version.split(' ')[0]!;
  } catch (error) {
    await client.end().catch(() => undefined);
    return { check: { name, status: missing, message: (error as Error).message } };
  }
  return {
    check: {
      name,
      status: 'pass',
      message: `${target.describe()} answers: PostgreSQL ${version}, ${await sessionTls(client, target)}`,
    },
    client,
    version,
  };
}

/** Whether the session is encrypted, as the server sees it (`pg_stat_ssl`), and the configured sslmode. */
async function sessionTls(client: pg.Client, target: DatabaseTarget): Promise<string> {
  const { rows } = await client.query<{ ssl: boolean | null; version: string | null }>(
    'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
  );
  const row = rows[0];
  return row?.ssl
    ? `encrypted (${row.version ?? 'TLS'}, sslmode=${target.ssl.mode})`
    : `not encrypted (sslmode=${target.ssl.mode})`;
}

/** Whether a session to the test database is encrypted; an info line when it cannot be opened yet. */
async function testSessionTls(config: ResolvedConfig): Promise<DoctorCheck> {
  try {
    const client = await connect(config.test, 'test', { connectionTimeoutMillis: 5000 });
    const tls = await sessionTls(client, config.test).finally(() => client.end());
    return { name: 'test tls', status: 'info', message: `the test session is ${tls}` };
  } catch {
    return {
      name: 'test tls',
      status: 'info',
      message: `not checked: the test database cannot be opened yet (sslmode=${config.test.ssl.mode})`,
    };
  }
}

interface AdminRights {
  user: string;
  superuser: boolean;
  createdb: boolean;
  createrole: boolean;
}

async function adminRights(admin: pg.Client): Promise<AdminRights> {
  const { rows } = await admin.query<AdminRights>(
    `SELECT current_user AS user, rolsuper AS superuser, rolcreatedb AS createdb, rolcreaterole AS createrole
       FROM pg_roles WHERE rolname = current_user`,
  );
  return rows[0]!;
}

async function testRoleCheck(
  config: ResolvedConfig,
  admin: pg.Client,
  rights: AdminRights,
  setupMayFix: boolean,
): Promise<DoctorCheck> {
  const { test } = config;
  const { rows } = await admin.query<{ can_login: boolean | null; owner: string | null }>(
    `SELECT (SELECT rolcanlogin FROM pg_roles WHERE rolname = $1) AS can_login,
            (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $2) AS owner`,
    [test.user, test.database],
  );
  const { can_login: canLogin, owner } = rows[0]!;
  const adminCan = (right: 'createdb' | 'createrole') => rights.superuser || rights[right];
  const todo: string[] = [];
  const lacking: string[] = [];
  if (canLogin === null) (adminCan('createrole') ? todo : lacking).push(`role ${test.user}`);
  if (owner === null) (adminCan('createdb') ? todo : lacking).push(`database ${test.database}`);
  if (lacking.length > 0) {
    return {
      name: 'test role',
      status: 'fail',
      message:
        `${lacking.join(' and ')} do${lacking.length === 1 ? 'es' : ''} not exist, and the admin connection (${rights.user}) ` +
        `may not create ${lacking.length === 1 ? 'it' : 'them'} (needs ${lacking.map((item) => (item.startsWith('role') ? 'CREATEROLE' : 'CREATEDB')).join(' and ')}). ` +
        'Grant the right, create them yourself, or set TEST_DB_ADMIN_URL to a role that has it.',
    };
  }
  if (todo.length > 0) {
    return {
      name: 'test role',
      status: 'pass',
      message: `${todo.join(' and ')} do${todo.length === 1 ? 'es' : ''} not exist yet; pgtwin setup creates ${todo.length === 1 ? 'it' : 'them'} as ${rights.user} (${describeRights(rights)})`,
    };
  }
  if (!canLogin) {
    return {
      name: 'test role',
      status: adminCan('createrole') ? 'warn' : 'fail',
      message: `role ${test.user} may not log in${adminCan('createrole') ? '; pgtwin setup allows it' : '. Run ALTER ROLE ... LOGIN or grant CREATEROLE to the admin role.'}`,
    };
  }
  let client: pg.Client;
  try {
    client = await connect(test, 'test', { connectionTimeoutMillis: 5000 });
  } catch (error) {
    return { name: 'test role', status: 'fail', message: (error as Error).message };
  }
  try {
    const { rows: privileges } = await client.query<{ create: boolean; temp: boolean }>(
      `SELECT has_schema_privilege('public', 'CREATE') AS create, has_database_privilege(current_database(), 'CREATE') AS temp`,
    );
    const { create, temp } = privileges[0]!;
    const owns = owner === test.user;
    const missing = [
      !owns && 'owns it',
      !create && 'may create in schema public',
      !temp && 'may create schemas',
    ].filter(Boolean);
    return missing.length === 0
      ? {
          name: 'test role',
          status: 'pass',
          message: `${test.user} logs in to ${test.database}, owns it and may create schemas and objects in public`,
        }
      : {
          name: 'test role',
          status: 'warn',
          message:
            `${test.user} logs in to ${test.database} but not: ${missing.join(', ')}. ` +
            (setupMayFix
              ? 'pgtwin setup fixes ownership and rights on public.'
              : 'pgtwin setup may not change this database (see the guard check): point TEST_DB_NAME at a database of its own.'),
        };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function directTestLogin(config: ResolvedConfig): Promise<DoctorCheck> {
  try {
    const client = await connect(config.test, 'test', { connectionTimeoutMillis: 5000 });
    const tls = await sessionTls(client, config.test).finally(() => client.end());
    return { name: 'test role', status: 'pass', message: `${config.test.describe()} logs in, ${tls}` };
  } catch (error) {
    return { name: 'test role', status: 'fail', message: (error as Error).message };
  }
}

function describeRights(rights: AdminRights): string {
  if (rights.superuser) return 'superuser';
  const list = [rights.createdb && 'CREATEDB', rights.createrole && 'CREATEROLE'].filter(Boolean);
  return list.length > 0 ? list.join(', ') : 'no CREATEDB or CREATEROLE';
}

function versionCheck(production: string | undefined, test: string | undefined): DoctorCheck {
  if (production === undefined || test === undefined) {
    return {
      name: 'versions',
      status: 'info',
      message: `production ${production ?? 'unknown'}, test server ${test ?? 'unknown'}`,
    };
  }
  const major = (version: string) => Number.parseInt(version, 10);
  return major(test) < major(production)
    ? {
        name: 'versions',
        status: 'warn',
        message: `the test server (PostgreSQL ${test}) is older than production (${production}): cloning may fail on newer features. Use a test server of production's major version or later.`,
      }
    : {
        name: 'versions',
        status: 'pass',
        message: `production PostgreSQL ${production}, test server ${test}`,
      };
}

async function guardCheck(config: ResolvedConfig, admin: pg.Client): Promise<DoctorCheck> {
  const { test } = config;
  try {
    await guardDestructive({ config, target: test, operation: 'reset', creating: true });
  } catch (error) {
    return { name: 'guard', status: 'fail', message: (error as Error).message };
  }
  const marker = await (await TwinDatabases.open(config, admin)).marker(test.database);
  const why =
    marker === undefined
      ? "it is not production; it does not exist yet and setup creates it with pgtwin's marker"
      : marker === null
        ? 'it is not production; it has no pgtwin marker, allowed by PGTWIN_ALLOW_UNMARKED=1'
        : `it is not production and carries pgtwin's marker (${marker.kind}, created ${marker.created})`;
  return {
    name: 'guard',
    status: marker === null ? 'warn' : 'pass',
    message: `a destructive operation on ${test.describe()} would be allowed: ${why}`,
  };
}

async function embeddedCheck(needed: boolean): Promise<DoctorCheck> {
  try {
    const binaries = await locateEmbeddedBinaries();
    return {
      name: 'embedded',
      status: 'pass',
      message: `${binaries.version} available in ${binaries.packageDir}`,
    };
  } catch (error) {
    return {
      name: 'embedded',
      status: needed ? 'fail' : 'info',
      message: `${needed ? '' : 'optional, not available: '}${(error as Error).message}`,
    };
  }
}

function containerCheck(needed: boolean, env: Record<string, string | undefined>): DoctorCheck {
  let installed = true;
  try {
    createRequire(import.meta.url).resolve(CONTAINER_MODULE);
  } catch {
    installed = false;
  }
  const engine = findContainerEngine(env);
  const ok = installed && engine !== undefined;
  const state = [
    installed ? `${CONTAINER_MODULE} installed` : `${CONTAINER_MODULE} not installed`,
    engine ? `engine at ${engine}` : 'no container engine found (DOCKER_HOST or a Docker/Podman socket)',
  ].join('; ');
  return {
    name: 'container',
    status: ok ? 'pass' : needed ? 'fail' : 'info',
    message: ok
      ? state
      : `${needed ? '' : 'optional, not available: '}${state}.${needed ? ` provider container needs both: install ${CONTAINER_MODULE} and start Docker or Podman.` : ''}`,
  };
}

function findContainerEngine(env: Record<string, string | undefined>): string | undefined {
  if (env.DOCKER_HOST) return `DOCKER_HOST=${env.DOCKER_HOST}`;
  const runtime = env.XDG_RUNTIME_DIR;
  const candidates = [
    '/var/run/docker.sock',
    path.join(homedir(), '.docker/run/docker.sock'),
    path.join(homedir(), '.docker/desktop/docker.sock'),
    runtime && path.join(runtime, 'docker.sock'),
    runtime && path.join(runtime, 'podman/podman.sock'),
    '/run/podman/podman.sock',
  ].filter((item): item is string => typeof item === 'string');
  return candidates.find((socket) => existsSync(socket));
}

async function staleCheck(config: ResolvedConfig): Promise<DoctorCheck> {
  try {
    const { wouldDrop: dropped } = await gc(config, { dryRun: true });
    if (dropped.length === 0)
      return {
        name: 'stale',
        status: 'pass',
        message: 'no stale pgtwin databases (older than 1 day, run gone)',
      };
    const names = dropped.slice(0, 5).map((entry) => entry.name);
    const more = dropped.length > names.length ? ` and ${dropped.length - names.length} more` : '';
    return {
      name: 'stale',
      status: 'warn',
      message: `${dropped.length} stale pgtwin database${dropped.length === 1 ? '' : 's'} (${names.join(', ')}${more}). pgtwin gc --yes drops them.`,
    };
  } catch (error) {
    return {
      name: 'stale',
      status: 'warn',
      message: `could not list pgtwin databases: ${(error as Error).message}`,
    };
  }
}
