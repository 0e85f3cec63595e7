import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import { ENV_NAMES } from '../config/env-names.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import {
  currentRun,
  listStamped,
  newMarker,
  readMarker,
  writeMarker,
  type TemplateMarker,
} from '../guard/test-marker.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { cleanLeftovers, createDatabase, dropDatabase, type CloneStrategy } from './database-lifecycle.js';
import {
  buildLock,
  leaseLock,
  lock,
  runLock,
  TEMPLATE_PREFIX,
  templateName,
  tryLock,
  unlock,
} from './template-locks.js';

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
   * @default false (the configuration's `rebuild`, `PGTWIN_REBUILD=1`, is passed by the global setup)
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
 * run building the same fingerprint is waited for, then its template reused), into a new database created
 * empty under a work-in-progress name and owned by the test user, then published in one transaction: renamed
 * to `pgtwin_tpl_<fp>`, flagged `IS_TEMPLATE` and closed to connections, stamped `template` (see
 * {@link createDatabase}). A failing `build` drops its database; a killed process leaves it to the next
 * run's cleanup or `gc`, which drop it once no session holds its lock. Leftovers of dead runs are cleaned first.
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
  const rebuild = options.rebuild ?? false;
  const own = options.session ? undefined : await connect(config.admin, 'admin');
  const session = options.session ?? own!;
  const template = templateName(fingerprint);
  try {
    await cleanLeftovers(config, session, logger);
    await lock(session, buildLock(fingerprint), 'exclusive');
    let leased = false;
    try {
      if (!rebuild && (await findTemplate(session, fingerprint)))
        return { template, fingerprint, built: false };
      const started = performance.now();
      await createDatabase(config, session, template, {
        fill: async (target) => {
          await build(target);
          logger.debug(`template build ${Math.round(performance.now() - started)} ms`);
        },
        marker: {
          ...newMarker('template'),
          kind: 'template',
          fingerprint,
          lineage: lineageOf(config),
        } as TemplateMarker,
        isTemplate: true,
        // Templates are shared by runs: the lease, not the run that built it, says whether one is in use.
        replaceLive: true,
        beforePlace: async () => {
          // Whatever holds the name is replaced (a template being rebuilt), once no other run leases it.
          if ((await readMarker(session, template)) === undefined) return;
          if (!(await tryLock(session, leaseLock(template), 'exclusive'))) {
            logger.info(
              `waiting for the runs using ${template} to end before replacing it (${ENV_NAMES.rebuild})`,
            );
            await lock(session, leaseLock(template), 'exclusive');
          }
          leased = true;
        },
      });
      await dropSuperseded(config, session, template, logger);
      return { template, fingerprint, built: true };
    } finally {
      if (leased) await unlock(session, leaseLock(template), 'exclusive').catch(() => undefined);
      await unlock(session, buildLock(fingerprint), 'exclusive').catch(() => undefined);
    }
  } finally {
    await own?.end();
  }
}

/**
 * Identifies one project's twin (its directory and the production it is built from), so a new build can
 * retire the templates it supersedes. Not the test database's name: runs with different names share templates.
 */
function lineageOf(config: ResolvedConfig): string {
  const { production, rootDir } = config;
  return createHash('sha256')
    .update(JSON.stringify([rootDir, production.host, production.port, production.database]))
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

/** Options of {@link cloneTemplate}. */
export interface CloneTemplateOptions {
  /** Marker kind of the clone. @default 'test' */
  kind?: 'test' | 'worker' | 'scratch';
  /** @default DEFAULT_CLONE_STRATEGY */
  strategy?: CloneStrategy;
  /** An admin connection to reuse; one is opened otherwise. */
  admin?: pg.ClientBase;
  /** The run its marker names (whose run lock keeps it from other runs and `gc`). @default this process */
  run?: string;
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
    return await createDatabase(config, admin, name, {
      template,
      strategy: options.strategy,
      marker: newMarker(options.kind ?? 'test', options.run),
    });
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
  const rebuild = options.rebuild ?? false;
  const lease = await openLease(config, fingerprint, async (session, found) => {
    if (found && !rebuild) return false;
    return (await buildTemplate(config, fingerprint, build, { ...options, rebuild, session })).built;
  });
  return lease!;
}

/**
 * Leases the published template for `fingerprint` (and marks the run alive) without building it: `undefined`
 * when there is none. A warm start leases the template the previous run used while it reads the fingerprint.
 *
 * @example
 * const lease = await leaseTemplate(config, previousFingerprint); // undefined once gc dropped it
 */
export async function leaseTemplate(
  config: ResolvedConfig,
  fingerprint: string,
): Promise<TemplateLease | undefined> {
  return openLease(config, fingerprint, (_session, found) => Promise.resolve(found ? false : undefined));
}

/**
 * Opens the lease session, takes the run lock and the lease on the template (before looking, so nothing can
 * drop it between finding and cloning), then asks `decide` whether it was built (`undefined`: no lease).
 */
async function openLease(
  config: ResolvedConfig,
  fingerprint: string,
  decide: (session: pg.Client, found: boolean) => Promise<boolean | undefined>,
): Promise<TemplateLease | undefined> {
  const session = await connect(config.admin, 'admin');
  // A lost lease connection must not crash the run; the lease just ends with it.
  session.on('error', () => undefined);
  const template = templateName(fingerprint);
  try {
    await lock(session, runLock(currentRun()), 'shared');
    await lock(session, leaseLock(template), 'shared');
    const found = await findTemplate(session, fingerprint);
    const built = await decide(session, found !== undefined);
    if (built === undefined) {
      await session.end().catch(() => undefined);
      return undefined;
    }
    if (found && !built) {
      const touched: TemplateMarker = { ...found.marker, used: new Date().toISOString() };
      // Best effort: a concurrent run may be stamping it at the same moment.
      await writeMarker(session, template, touched).catch(() => undefined);
    }
    let released: Promise<void> | undefined;
    const release = () => (released ??= session.end().catch(() => undefined));
    return { template, fingerprint, built, release, [Symbol.asyncDispose]: release };
  } catch (error) {
    await session.end().catch(() => undefined);
    throw error;
  }
}
