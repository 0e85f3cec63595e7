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
import {
  cleanLeftovers,
  createDatabase,
  dropDatabase,
  type CloneStrategy,
  type DropLater,
} from './database-lifecycle.js';
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
  /** Takes the drops of the templates the build replaces, to run while the caller goes on (see `createDatabase`). */
  dropLater?: DropLater;
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
  fingerprint: string | Promise<string>,
  build: TemplateBuilder,
  options: BuildTemplateOptions & {
    session?: pg.ClientBase;
    /** Called with a fingerprint still being read once it is known, before anything is published under it. */
    onFingerprint?: (fingerprint: string) => Promise<void>;
  } = {},
): Promise<TemplateBuild> {
  const logger = options.logger ?? silentLogger;
  const rebuild = options.rebuild ?? false;
  const own = options.session ? undefined : await connect(config.admin, 'admin');
  const session = options.session ?? own!;
  let known = typeof fingerprint === 'string' ? fingerprint : undefined;
  let locked: string | undefined;
  let leased: string | undefined;
  /** Takes the build lock of `fp`; true when its template is published and to be reused. */
  const lockAndFind = async (fp: string) => {
    await lock(session, buildLock(fp), 'exclusive');
    locked = fp;
    return !rebuild && (await findTemplate(session, fp)) !== undefined;
  };
  const reused = (fp: string): TemplateBuild => ({
    template: templateName(fp),
    fingerprint: fp,
    built: false,
  });
  try {
    await cleanLeftovers(config, session, logger);
    if (known !== undefined && (await lockAndFind(known))) return reused(known);
    const late = typeof fingerprint === 'string' ? undefined : lateIdentity(config, fingerprint);
    const started = performance.now();
    try {
      await createDatabase(config, session, late?.name ?? templateName(known!), {
        fill: async (target) => {
          await build(target);
          logger.debug(`template build ${Math.round(performance.now() - started)} ms`);
          if (known !== undefined) return;
          known = await fingerprint;
          await options.onFingerprint?.(known);
          if (await lockAndFind(known)) throw new PublishedMeanwhile();
        },
        marker: late?.marker ?? templateMarker(config, known!),
        isTemplate: true,
        // Templates are shared by runs: the lease, not the run that built it, says whether one is in use.
        replaceLive: true,
        dropLater: options.dropLater,
        beforePlace: async () => {
          // Whatever holds the name is replaced (a template being rebuilt), once no other run leases it.
          const template = templateName(known!);
          if ((await readMarker(session, template)) === undefined) return;
          if (!(await tryLock(session, leaseLock(template), 'exclusive'))) {
            logger.info(
              `waiting for the runs using ${template} to end before replacing it (${ENV_NAMES.rebuild})`,
            );
            await lock(session, leaseLock(template), 'exclusive');
          }
          leased = template;
        },
      });
    } catch (error) {
      if (error instanceof PublishedMeanwhile) return reused(known!);
      throw error;
    }
    const current = templateName(known!);
    const retire = (admin: pg.ClientBase) => dropSuperseded(config, admin, current, logger);
    if (options.dropLater) options.dropLater(retire);
    else await retire(session);
    return { template: current, fingerprint: known!, built: true };
  } finally {
    if (leased) await unlock(session, leaseLock(leased), 'exclusive').catch(() => undefined);
    if (locked) await unlock(session, buildLock(locked), 'exclusive').catch(() => undefined);
    await own?.end();
  }
}

/** Thrown by a build ahead of its fingerprint when another run published that fingerprint's template meanwhile. */
class PublishedMeanwhile extends Error {}

function templateMarker(config: ResolvedConfig, fingerprint: string): TemplateMarker {
  return {
    ...newMarker('template'),
    kind: 'template',
    fingerprint,
    lineage: lineageOf(config),
  } as TemplateMarker;
}

/** The name and marker of a template whose fingerprint is still being read. */
function lateIdentity(
  config: ResolvedConfig,
  fingerprint: Promise<string>,
): { name: Promise<string>; marker: Promise<TemplateMarker> } {
  const name = fingerprint.then(templateName);
  const marker = fingerprint.then((known) => templateMarker(config, known));
  // Awaited only once the build is done; a build failing first must not leave them unhandled.
  name.catch(() => undefined);
  marker.catch(() => undefined);
  return { name, marker };
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

/** Whether the server holds a published template of this project (built from its directory and production). */
export async function hasProjectTemplate(config: ResolvedConfig, admin: pg.ClientBase): Promise<boolean> {
  const lineage = lineageOf(config);
  return (await listStamped(admin)).some(
    ({ name, marker, isTemplate }) =>
      isTemplate && name.startsWith(TEMPLATE_PREFIX) && (marker as TemplateMarker).lineage === lineage,
  );
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
  /** The template's fingerprint, recorded on the clone's marker (a later run may keep a clone left clean). @default none */
  fingerprint?: string;
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
      marker: {
        ...newMarker(options.kind ?? 'test', options.run),
        ...(options.fingerprint === undefined ? {} : { fingerprint: options.fingerprint }),
      },
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
  /** The transaction ids of the marker writes taking the lease made (a reused template's last use). */
  readonly markerWrites: readonly string[];
  /** Ends the lease (closes its connection); idempotent. */
  release(): Promise<void>;
}

/**
 * The run's whole template step: leases the template for `fingerprint` (and marks the run alive), reuses it
 * when published, else builds it with {@link buildTemplate}. Keep the lease for the whole run and release it
 * in global teardown; a killed process releases it with its connection.
 *
 * With `fingerprint` still being read (a promise), the build starts at once and the template is leased once
 * the fingerprint is known, before it is published; if a template for it was published meanwhile (and
 * `rebuild` is off), the build is discarded and that one is reused. For when a build is expected: a run that
 * would have reused a template does the build's work for nothing.
 *
 * @example
 * ```ts
 * await using lease = await ensureTemplate(config, fingerprint, buildTwin);
 * await prepareWorkerDatabases(config, lease.template, workers);
 * ```
 */
export async function ensureTemplate(
  config: ResolvedConfig,
  fingerprint: string | Promise<string>,
  build: TemplateBuilder,
  options: BuildTemplateOptions = {},
): Promise<TemplateLease> {
  const rebuild = options.rebuild ?? false;
  if (typeof fingerprint !== 'string') return buildAhead(config, fingerprint, build, { ...options, rebuild });
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
  const session = await leaseSession(config);
  const template = templateName(fingerprint);
  try {
    await lock(session, leaseLock(template), 'shared');
    const found = await findTemplate(session, fingerprint);
    const built = await decide(session, found !== undefined);
    if (built === undefined) {
      await session.end().catch(() => undefined);
      return undefined;
    }
    const touched = found && !built ? await touch(session, found) : undefined;
    return heldLease(session, template, fingerprint, built, touched);
  } catch (error) {
    await session.end().catch(() => undefined);
    throw error;
  }
}

/** {@link ensureTemplate} for a fingerprint still being read. */
async function buildAhead(
  config: ResolvedConfig,
  fingerprint: Promise<string>,
  build: TemplateBuilder,
  options: BuildTemplateOptions,
): Promise<TemplateLease> {
  const session = await leaseSession(config);
  try {
    const result = await buildTemplate(config, fingerprint, build, {
      ...options,
      session,
      // Leased before anything is published or reused under the name, as openLease does before looking.
      onFingerprint: (known) => lock(session, leaseLock(templateName(known)), 'shared'),
    });
    const found = result.built ? undefined : await findTemplate(session, result.fingerprint);
    const touched = found && (await touch(session, found));
    return heldLease(session, result.template, result.fingerprint, result.built, touched);
  } catch (error) {
    await session.end().catch(() => undefined);
    throw error;
  }
}

/** A session for a lease, the run marked alive on it. */
async function leaseSession(config: ResolvedConfig): Promise<pg.Client> {
  const session = await connect(config.admin, 'admin');
  try {
    await lock(session, runLock(currentRun()), 'shared');
  } catch (error) {
    await session.end().catch(() => undefined);
    throw error;
  }
  return session;
}

/** Records when a reused template was last used; returns the transaction id the write took. */
async function touch(session: pg.ClientBase, found: FoundTemplate): Promise<string | undefined> {
  const touched: TemplateMarker = { ...found.marker, used: new Date().toISOString() };
  // Best effort: a concurrent run may be stamping it at the same moment.
  return writeMarker(session, found.name, touched).catch(() => undefined);
}

function heldLease(
  session: pg.Client,
  template: string,
  fingerprint: string,
  built: boolean,
  touched: string | undefined,
): TemplateLease {
  let released: Promise<void> | undefined;
  const release = () => (released ??= session.end().catch(() => undefined));
  const markerWrites = touched ? [touched] : [];
  return { template, fingerprint, built, markerWrites, release, [Symbol.asyncDispose]: release };
}
