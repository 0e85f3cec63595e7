import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { ConfigError, ProvisionError } from '../errors.js';
import { guardDestructive } from '../guard/production-guard.js';
import { newMarker, readMarker, writeMarker, type TestMarker } from '../guard/test-marker.js';
import { silentLogger, type Logger } from '../util/logger.js';
import {
  BUILD_PREFIX,
  buildLock,
  buildName,
  currentRun,
  fingerprintOfName,
  leaseLock,
  lock,
  runHoldsLock,
  runLock,
  TEMPLATE_PREFIX,
  templateName,
  tryLock,
  unlock,
} from './template-locks.js';

/** How `CREATE DATABASE ... TEMPLATE` copies (PostgreSQL 15 and later; older servers always copy files). */
export type CloneStrategy = 'FILE_COPY' | 'WAL_LOG';

/**
 * FILE_COPY copies the template's files and checkpoints; WAL_LOG (PostgreSQL 15's default) writes every
 * block to the WAL. On the benchmark fixture FILE_COPY is the faster one (see bench/RESULTS.md).
 */
export const DEFAULT_CLONE_STRATEGY: CloneStrategy = 'FILE_COPY';

/** The marker of a published template: which fingerprint it holds and when a run last used it. */
export interface TemplateMarker extends TestMarker {
  kind: 'template';
  /** The full fingerprint (the name carries its first 12 hex digits). */
  fingerprint: string;
  /** Which project's twin it is (production and test database), so a newer build replaces older ones. */
  lineage?: string;
  /** ISO time a run last reused it; `gc` ages templates from here. */
  used?: string;
}

/** A published template found by {@link findTemplate}. */
export interface FoundTemplate {
  name: string;
  marker: TemplateMarker;
}

/** Builds a template's content into `target`, an empty database owned by the test user. */
export type TemplateBuilder = (target: DatabaseTarget) => Promise<void>;

/** Options of {@link buildTemplate} and {@link ensureTemplate}. */
export interface BuildTemplateOptions {
  /**
   * Build even when a template for the fingerprint exists, replacing it once no other run uses it.
   * @default PGTWIN_REBUILD=1 in the environment
   */
  rebuild?: boolean;
  logger?: Logger;
}

/** What {@link buildTemplate} did. */
export interface TemplateBuild {
  /** The published template. */
  template: string;
  fingerprint: string;
  /** False when a template for the fingerprint was already there (possibly built by a concurrent run meanwhile). */
  built: boolean;
}

/**
 * Whether `PGTWIN_REBUILD` asks for a rebuild.
 *
 * @example
 * rebuildRequested({ PGTWIN_REBUILD: '1' }); // true
 */
export function rebuildRequested(env: Record<string, string | undefined> = process.env): boolean {
  const value = env.PGTWIN_REBUILD;
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new ConfigError(
    'PGTWIN_REBUILD',
    `PGTWIN_REBUILD must be 1 (rebuild the template) or 0, got ${JSON.stringify(value)}.`,
  );
}

/**
 * The published template for `fingerprint` on the server `admin` is connected to, or `undefined`. Only a
 * database under the template name, flagged as a template and stamped `template` counts: a build that died
 * half-way is never any of these, since publishing does all three in one transaction.
 *
 * @example
 * const found = await findTemplate(admin, fingerprint); // { name: 'pgtwin_tpl_3f9a0c2b7d41', marker }
 */
export async function findTemplate(
  admin: pg.ClientBase,
  fingerprint: string,
): Promise<FoundTemplate | undefined> {
  const name = templateName(fingerprint);
  const { rows } = await admin.query<{ comment: string | null }>(
    `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1 AND datistemplate`,
    [name],
  );
  if (rows.length === 0) return undefined;
  const marker = await readMarker(admin, name);
  if (!marker || marker.kind !== 'template') return undefined;
  const templateMarker = marker as TemplateMarker;
  if (templateMarker.fingerprint !== undefined && templateMarker.fingerprint !== fingerprint)
    return undefined;
  return { name, marker: templateMarker };
}

/**
 * Builds the template for `fingerprint` unless it is already published: under the build lock (a concurrent
 * run building the same fingerprint is waited for, then its template reused), into `pgtwin_build_<fp>_<pid>`
 * created empty and owned by the test user, then published in one transaction: renamed to
 * `pgtwin_tpl_<fp>`, flagged `IS_TEMPLATE` and closed to connections, stamped `template`. A failing `build`
 * drops its database; a killed process leaves it to the next build or `gc`, which drop it once no session
 * holds its build lock. Leftover builds of dead runs are cleaned first.
 *
 * The test role must exist (`provisionTestDatabase` creates it).
 *
 * @example
 * ```ts
 * const { template, built } = await buildTemplate(config, fingerprint, async (target) => {
 *   // clone structure, mirror, seed into target
 * });
 * ```
 */
export async function buildTemplate(
  config: ResolvedConfig,
  fingerprint: string,
  build: TemplateBuilder,
  options: BuildTemplateOptions & { session?: pg.ClientBase } = {},
): Promise<TemplateBuild> {
  const logger = options.logger ?? silentLogger;
  const rebuild = options.rebuild ?? rebuildRequested();
  const own = options.session ? undefined : await connect(config.admin, 'admin');
  const session = options.session ?? own!;
  const template = templateName(fingerprint);
  try {
    await cleanBuildLeftovers(config, session, logger);
    await lock(session, buildLock(fingerprint), 'exclusive');
    try {
      if (!rebuild && (await findTemplate(session, fingerprint)))
        return { template, fingerprint, built: false };
      // Whatever holds the name is replaced: a template being rebuilt, or a stamped database that is not one.
      const existing = (await readMarker(session, template)) !== undefined;

      const temporary = buildName(fingerprint);
      if ((await readMarker(session, temporary)) !== undefined)
        await dropDatabase(config, session, temporary);
      await session.query(
        `CREATE DATABASE ${session.escapeIdentifier(temporary)} OWNER ${session.escapeIdentifier(config.test.user)}`,
      );
      await writeMarker(session, temporary, newMarker('scratch'));
      const started = performance.now();
      try {
        await build(config.test.withDatabase(temporary));
      } catch (error) {
        await dropDatabase(config, session, temporary).catch(() => undefined);
        throw error;
      }
      logger.debug(`template build ${Math.round(performance.now() - started)} ms`);

      if (existing) {
        if (!(await tryLock(session, leaseLock(template), 'exclusive'))) {
          logger.info(`waiting for the runs using ${template} to end before replacing it (PGTWIN_REBUILD)`);
          await lock(session, leaseLock(template), 'exclusive');
        }
      }
      try {
        if (existing) await dropDatabase(config, session, template);
        await publish(session, temporary, template, {
          ...newMarker('template'),
          kind: 'template',
          fingerprint,
          lineage: lineageOf(config),
        });
      } finally {
        if (existing) await unlock(session, leaseLock(template), 'exclusive');
      }
      await dropSuperseded(config, session, template, logger);
      return { template, fingerprint, built: true };
    } finally {
      await unlock(session, buildLock(fingerprint), 'exclusive').catch(() => undefined);
    }
  } finally {
    await own?.end();
  }
}

async function publish(
  session: pg.ClientBase,
  temporary: string,
  template: string,
  marker: TemplateMarker,
): Promise<void> {
  const from = session.escapeIdentifier(temporary);
  const to = session.escapeIdentifier(template);
  for (let attempt = 0; ; attempt++) {
    // The builder's connections may still be closing; renaming needs none left.
    await session.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [temporary],
    );
    await session.query('BEGIN');
    try {
      await session.query(`ALTER DATABASE ${from} RENAME TO ${to}`);
      await session.query(`ALTER DATABASE ${to} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
      await writeMarker(session, template, marker);
      await session.query('COMMIT');
      return;
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      if ((error as { code?: string }).code !== '55006' || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Identifies one project's twin, so a new build can retire the templates it supersedes. */
function lineageOf(config: ResolvedConfig): string {
  const { production, test } = config;
  return createHash('sha256')
    .update(JSON.stringify([production.host, production.port, production.database, test.database]))
    .digest('hex')
    .slice(0, 16);
}

/** Drops this project's older templates that no run leases; leased ones are left for a later build or `gc`. */
async function dropSuperseded(
  config: ResolvedConfig,
  session: pg.ClientBase,
  current: string,
  logger: Logger,
): Promise<void> {
  const lineage = lineageOf(config);
  for (const { name, marker } of await listStamped(session)) {
    if (
      name === current ||
      !name.startsWith(TEMPLATE_PREFIX) ||
      (marker as TemplateMarker).lineage !== lineage
    )
      continue;
    if (await dropTemplate(config, name, { admin: session }))
      logger.debug(`dropped superseded template ${name}`);
  }
}

/**
 * Drops build databases whose builder is gone: nobody holds their fingerprint's build lock (a live builder
 * always does, on any host). Returns the names dropped.
 */
export async function cleanBuildLeftovers(
  config: ResolvedConfig,
  admin: pg.ClientBase,
  logger: Logger = silentLogger,
): Promise<string[]> {
  const dropped: string[] = [];
  for (const { name } of await listStamped(admin)) {
    const fingerprint = fingerprintOfName(name);
    if (!name.startsWith(BUILD_PREFIX) || fingerprint === undefined || name === buildName(fingerprint))
      continue;
    if (!(await tryLock(admin, buildLock(fingerprint), 'exclusive'))) continue;
    try {
      await dropDatabase(config, admin, name);
      dropped.push(name);
      logger.info(`dropped ${name}, left by a template build that did not finish`);
    } finally {
      await unlock(admin, buildLock(fingerprint), 'exclusive');
    }
  }
  return dropped;
}

/** Options of {@link cloneTemplate}. */
export interface CloneTemplateOptions {
  /** Marker kind of the clone. @default 'test' */
  kind?: 'test' | 'worker';
  /** @default DEFAULT_CLONE_STRATEGY */
  strategy?: CloneStrategy;
  /** An admin connection to reuse; one is opened otherwise. */
  admin?: pg.ClientBase;
}

/**
 * Creates `name` as a copy of `template`, owned by the test user and stamped with `kind`, replacing a
 * pgtwin database of that name (through the guard; never one another live run is using). Returns the
 * clone's target, with the test user's credentials.
 *
 * @example
 * const target = await cloneTemplate(config, 'pgtwin_tpl_3f9a0c2b7d41', config.test.database);
 */
export async function cloneTemplate(
  config: ResolvedConfig,
  template: string,
  name: string,
  options: CloneTemplateOptions = {},
): Promise<DatabaseTarget> {
  const admin = options.admin ?? (await connect(config.admin, 'admin'));
  try {
    const marker = await readMarker(admin, name);
    if (marker !== undefined) {
      if (marker && marker.run !== currentRun() && (await runHoldsLock(admin, marker.run))) {
        throw new ProvisionError(
          'clone',
          `Cannot recreate ${name}: the pgtwin run ${marker.run} is still using it. ` +
            `Wait for that run to end, or give this run another TEST_DB_NAME.`,
        );
      }
      await dropDatabase(config, admin, name);
    }
    const strategy =
      (await serverVersion(admin)) >= 150000 ? ` STRATEGY ${options.strategy ?? DEFAULT_CLONE_STRATEGY}` : '';
    await admin.query(
      `CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE ${admin.escapeIdentifier(template)} ` +
        `OWNER ${admin.escapeIdentifier(config.test.user)}${strategy}`,
    );
    await writeMarker(admin, name, newMarker(options.kind ?? 'test'));
    return config.test.withDatabase(name);
  } finally {
    if (!options.admin) await (admin as pg.Client).end();
  }
}

/**
 * Drops a template unless a run leases it. Returns whether it was dropped.
 *
 * @example
 * await dropTemplate(config, 'pgtwin_tpl_3f9a0c2b7d41'); // false while a run uses it
 */
export async function dropTemplate(
  config: ResolvedConfig,
  template: string,
  options: { admin?: pg.ClientBase } = {},
): Promise<boolean> {
  const admin = options.admin ?? (await connect(config.admin, 'admin'));
  try {
    if (!(await tryLock(admin, leaseLock(template), 'exclusive'))) return false;
    try {
      if ((await readMarker(admin, template)) === undefined) return false;
      await dropDatabase(config, admin, template);
      return true;
    } finally {
      await unlock(admin, leaseLock(template), 'exclusive');
    }
  } finally {
    if (!options.admin) await (admin as pg.Client).end();
  }
}

/** A run's hold on a template: while it lasts, no other run or `gc` drops the template. */
export interface TemplateLease extends AsyncDisposable {
  readonly template: string;
  readonly fingerprint: string;
  /** Whether this run built the template (false: reused). */
  readonly built: boolean;
  /** Ends the lease (closes its connection); idempotent. */
  release(): Promise<void>;
}

/**
 * The run's whole template step: leases the template for `fingerprint` (and marks the run alive), reuses it
 * when published, else builds it with {@link buildTemplate}. Keep the lease for the whole run and release it
 * in global teardown; a killed process releases it with its connection.
 *
 * @example
 * ```ts
 * await using lease = await ensureTemplate(config, fingerprint, buildTwin);
 * await prepareWorkerDatabases(config, lease.template, workers);
 * ```
 */
export async function ensureTemplate(
  config: ResolvedConfig,
  fingerprint: string,
  build: TemplateBuilder,
  options: BuildTemplateOptions = {},
): Promise<TemplateLease> {
  const session = await connect(config.admin, 'admin');
  // A lost lease connection must not crash the run; the lease just ends with it.
  session.on('error', () => undefined);
  const template = templateName(fingerprint);
  try {
    await lock(session, runLock(currentRun()), 'shared');
    // Leased before looking, so nothing can drop it between finding and cloning.
    await lock(session, leaseLock(template), 'shared');
    const rebuild = options.rebuild ?? rebuildRequested();
    const found = rebuild ? undefined : await findTemplate(session, fingerprint);
    let built = false;
    if (found) {
      const touched: TemplateMarker = { ...found.marker, used: new Date().toISOString() };
      // Best effort: a concurrent run may be stamping it at the same moment.
      await writeMarker(session, template, touched).catch(() => undefined);
    } else {
      built = (await buildTemplate(config, fingerprint, build, { ...options, rebuild, session })).built;
    }
    let released: Promise<void> | undefined;
    const release = () => (released ??= session.end().catch(() => undefined));
    return { template, fingerprint, built, release, [Symbol.asyncDispose]: release };
  } catch (error) {
    await session.end().catch(() => undefined);
    throw error;
  }
}

/** Every database on the server stamped with pgtwin's marker. */
export async function listStamped(
  admin: pg.ClientBase,
): Promise<{ name: string; marker: TestMarker; isTemplate: boolean }[]> {
  const { rows } = await admin.query<{ name: string; comment: string; is_template: boolean }>(
    `SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment, datistemplate AS is_template
       FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE 'pgtwin:%' ORDER BY datname`,
  );
  const stamped = [];
  for (const row of rows) {
    try {
      stamped.push({
        name: row.name,
        marker: JSON.parse(row.comment.slice('pgtwin:'.length)) as TestMarker,
        isTemplate: row.is_template,
      });
    } catch {
      // A damaged marker counts as none: never touched.
    }
  }
  return stamped;
}

/** Drops a pgtwin database through the guard, closing its connections; templates are unflagged first. */
export async function dropDatabase(
  config: ResolvedConfig,
  admin: pg.ClientBase,
  name: string,
): Promise<void> {
  await guardDestructive({
    config,
    target: config.test.withDatabase(name),
    operation: 'drop',
    serverClient: admin,
  });
  const id = admin.escapeIdentifier(name);
  await admin.query(`ALTER DATABASE ${id} WITH IS_TEMPLATE false`);
  await admin.query(`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
}

const versions = new WeakMap<pg.ClientBase, number>();

async function serverVersion(client: pg.ClientBase): Promise<number> {
  let version = versions.get(client);
  if (version === undefined) {
    const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
    version = Number(rows[0]!.v);
    versions.set(client, version);
  }
  return version;
}
