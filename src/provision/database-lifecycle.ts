import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import { ENV_NAMES } from '../config/env-names.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { inTransaction } from '../connection/in-transaction.js';
import { serverVersion } from '../connection/server-version.js';
import { ProvisionError } from '../errors.js';
import { guardDestructive } from '../guard/production-guard.js';
import {
  newMarker,
  parseMarker,
  readMarker,
  TRASH_PREFIX,
  WIP_PREFIX,
  writeMarker,
  type TestMarker,
} from '../guard/test-marker.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { lock, lockHeld, runHoldsLock, tryLock, unlock, wipLock } from './template-locks.js';

/** How `CREATE DATABASE ... TEMPLATE` copies (PostgreSQL 15 and later; older servers always copy files). */
export type CloneStrategy = 'FILE_COPY' | 'WAL_LOG';

/**
 * FILE_COPY copies the template's files and checkpoints; WAL_LOG (PostgreSQL 15's default) writes every
 * block to the WAL. On the benchmark fixture FILE_COPY is the faster one (see bench/RESULTS.md).
 */
export const DEFAULT_CLONE_STRATEGY: CloneStrategy = 'FILE_COPY';

/** A database being created under a work-in-progress name, not yet in place. */
export interface WipDatabase {
  /** `pgtwin_wip_<16 hex>`. */
  readonly name: string;
  /** The database as the test user reaches it, to fill it. */
  readonly target: DatabaseTarget;
}

/** Options of {@link createDatabase}. */
export interface CreateDatabaseOptions {
  /** Copy this database (a template); empty (the server's default template) when absent. */
  template?: string;
  /** @default DEFAULT_CLONE_STRATEGY */
  strategy?: CloneStrategy;
  /** Builds the content into the new database before it is put in place; a failure drops it. */
  fill?: (target: DatabaseTarget) => Promise<void>;
  /**
   * The marker the database gets once in place; a promise with a `name` still to come (its work-in-progress
   * copy is then stamped as this process's).
   */
  marker: TestMarker | Promise<TestMarker>;
  /** Flag the database `IS_TEMPLATE` and closed to connections once in place. @default false */
  isTemplate?: boolean;
  /**
   * Replace a pgtwin database of that name even while the run named in its marker is alive. @default false:
   * a live run's database is left alone (a ProvisionError).
   */
  replaceLive?: boolean;
  /** Runs after the database is complete and before it is put in place (e.g. to take a lock); a failure drops it. */
  beforePlace?: () => Promise<void>;
  /**
   * Takes the drop of the database this one replaces (moved aside as `pgtwin_trash_…`), for the caller to run
   * on a session of its own while it goes on; the caller must see it end (a drop it never runs is left to
   * {@link cleanLeftovers}). @default dropped before createDatabase returns
   */
  dropLater?: DropLater;
}

/** Hands over a drop to run later on an admin session of its own (see {@link CreateDatabaseOptions.dropLater}). */
export type DropLater = (drop: (admin: pg.ClientBase) => Promise<void>) => void;

/**
 * Creates the pgtwin database `name` so that it appears complete or not at all: under a work-in-progress
 * name (`pgtwin_wip_…`, held by an advisory lock while this session works on it), stamped, filled, and only
 * then renamed into place in one transaction that also moves a database it replaces aside
 * (`pgtwin_trash_…`, dropped right after). A crash at any moment leaves the previous database in place, or a
 * leftover that {@link cleanLeftovers} removes on the next run of any kind and in `gc`. Every statement that
 * changes a database goes through the production guard first. Returns the database's target.
 *
 * `name` (and then the marker) may be a promise: the content is built at once and put in place under the
 * name once both are there (a template, named after a fingerprint read meanwhile).
 *
 * @example
 * ```ts
 * await createDatabase(config, admin, 'app_test_w2', { template: lease.template, marker: newMarker('worker') });
 * ```
 */
export async function createDatabase(
  config: ResolvedConfig,
  admin: pg.ClientBase,
  name: string | Promise<string>,
  options: CreateDatabaseOptions,
): Promise<DatabaseTarget> {
  const known = typeof name === 'string' ? { name, marker: await options.marker } : undefined;
  if (known) await admit(config, admin, known.name, known.marker, options);
  const wip = await createWip(config, admin, options, known?.marker.run);
  let placed: { name: string; marker: TestMarker };
  try {
    try {
      await options.fill?.(wip.target);
      placed = known ?? { name: await name, marker: await options.marker };
      if (!known) await admit(config, admin, placed.name, placed.marker, options);
      await options.beforePlace?.();
    } catch (error) {
      await dropDatabase(config, admin, wip.name).catch(() => undefined);
      throw error;
    }
    await placeWip(config, admin, wip.name, placed.name, { ...options, marker: placed.marker });
  } finally {
    await unlock(admin, wipLock(wip.name), 'exclusive').catch(() => undefined);
  }
  return config.test.withDatabase(placed.name);
}

/** The guard, and a live run's database refused, before `name` is created or replaced. */
async function admit(
  config: ResolvedConfig,
  admin: pg.ClientBase,
  name: string,
  marker: TestMarker,
  options: CreateDatabaseOptions,
): Promise<void> {
  await guardDestructive({ config, admin, database: name, operation: 'create', creating: true });
  await refuseLiveDatabase(admin, name, marker, options);
}

async function refuseLiveDatabase(
  admin: pg.ClientBase,
  name: string,
  marker: TestMarker,
  options: CreateDatabaseOptions,
): Promise<void> {
  if (options.replaceLive) return;
  const existing = await readMarker(admin, name);
  if (!existing || existing.run === marker.run) return;
  if (await runHoldsLock(admin, existing.run)) {
    throw new ProvisionError(
      'clone',
      `Cannot recreate ${name}: the pgtwin run ${existing.run} is still using it. ` +
        `Wait for that run to end, or give this run another ${ENV_NAMES.test.database}.`,
    );
  }
}

async function createWip(
  config: ResolvedConfig,
  admin: pg.ClientBase,
  options: CreateDatabaseOptions,
  run: string | undefined,
): Promise<WipDatabase> {
  const name = `${WIP_PREFIX}${randomBytes(8).toString('hex')}`;
  await lock(admin, wipLock(name), 'exclusive');
  try {
    const template = options.template ? ` TEMPLATE ${admin.escapeIdentifier(options.template)}` : '';
    const strategy =
      options.template && (await serverVersion(admin)) >= 150000
        ? ` STRATEGY ${options.strategy ?? DEFAULT_CLONE_STRATEGY}`
        : '';
    await admin.query(
      `CREATE DATABASE ${admin.escapeIdentifier(name)}${template} OWNER ${admin.escapeIdentifier(config.test.user)}${strategy}`,
    );
    await writeMarker(admin, name, newMarker('wip', run));
  } catch (error) {
    await unlock(admin, wipLock(name), 'exclusive').catch(() => undefined);
    throw error;
  }
  return { name, target: config.test.withDatabase(name) };
}

/** Puts `wip` in place as `name`; a database already called `name` is moved aside and dropped. */
async function placeWip(
  config: ResolvedConfig,
  admin: pg.ClientBase,
  wip: string,
  name: string,
  options: CreateDatabaseOptions & { marker: TestMarker },
): Promise<void> {
  if ((await readMarker(admin, name)) === undefined) {
    await renameIntoPlace(admin, wip, name, undefined, options);
    return;
  }
  await guardDestructive({ config, admin, database: name, operation: 'replace' });
  const trash = `${TRASH_PREFIX}${randomBytes(8).toString('hex')}`;
  // Held until the replaced database is dropped, so other runs' cleanup leaves it to this session.
  await lock(admin, wipLock(trash), 'exclusive');
  const dropTrash = async (session: pg.ClientBase) => {
    try {
      await dropDatabase(config, session, trash).catch(() => undefined);
    } finally {
      await unlock(admin, wipLock(trash), 'exclusive').catch(() => undefined);
    }
  };
  try {
    await renameIntoPlace(admin, wip, name, trash, options);
  } catch (error) {
    await unlock(admin, wipLock(trash), 'exclusive').catch(() => undefined);
    throw error;
  }
  if (options.dropLater) options.dropLater(dropTrash);
  else await dropTrash(admin);
}

/** One transaction: `name` (if any) becomes `trash`, `wip` becomes `name`, both stamped. */
async function renameIntoPlace(
  admin: pg.ClientBase,
  wip: string,
  name: string,
  trash: string | undefined,
  options: CreateDatabaseOptions & { marker: TestMarker },
): Promise<void> {
  const id = (database: string) => admin.escapeIdentifier(database);
  for (let attempt = 0; ; attempt++) {
    // Renaming needs no other session on either database: the filler's connections may still be closing,
    // and the replaced database's users are done with it (a live run's are refused before).
    await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()',
      [[wip, name]],
    );
    try {
      await inTransaction(admin, async () => {
        if (trash) {
          await admin.query(`ALTER DATABASE ${id(name)} RENAME TO ${id(trash)}`);
          await writeMarker(admin, trash, newMarker('trash'));
        }
        await admin.query(`ALTER DATABASE ${id(wip)} RENAME TO ${id(name)}`);
        if (options.isTemplate)
          await admin.query(`ALTER DATABASE ${id(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
        await writeMarker(admin, name, options.marker);
      });
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '55006' || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * Drops a pgtwin database through the guard, closing its connections; a template is unflagged first.
 *
 * @example
 * await dropDatabase(config, admin, 'app_test_w2');
 */
export async function dropDatabase(
  config: ResolvedConfig,
  admin: pg.ClientBase,
  name: string,
): Promise<void> {
  const { rows } = await admin.query<{ is_template: boolean; invalid: boolean }>(
    'SELECT datistemplate AS is_template, datconnlimit = -2 AS invalid FROM pg_database WHERE datname = $1',
    [name],
  );
  if (rows.length === 0) return;
  await guardDestructive({ config, admin, database: name, operation: 'drop' });
  const id = admin.escapeIdentifier(name);
  // ALTER on a database another session is dropping (or failed to drop) ends this session with a FATAL error.
  if (rows[0]!.is_template && !rows[0]!.invalid)
    await admin.query(`ALTER DATABASE ${id} WITH IS_TEMPLATE false`);
  await admin.query(`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
}

/**
 * What crashed runs left: databases still under a work-in-progress name whose creator is gone (nobody holds
 * its lock, on any host) and replaced databases not yet dropped.
 */
export async function findLeftovers(admin: pg.ClientBase): Promise<string[]> {
  const { rows } = await admin.query<{ name: string; comment: string | null }>(
    `SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment
       FROM pg_database WHERE datname LIKE $1 OR datname LIKE $2 ORDER BY datname`,
    [likePrefix(WIP_PREFIX), likePrefix(TRASH_PREFIX)],
  );
  const found: string[] = [];
  for (const { name, comment } of rows) {
    if (
      name.startsWith(WIP_PREFIX)
        ? !(await lockHeld(admin, wipLock(name)))
        : parseMarker(comment)?.kind === 'trash'
    )
      found.push(name);
  }
  return found;
}

/**
 * Drops what {@link findLeftovers} finds. Every run calls it before creating databases, and so does `gc`.
 * Returns the names dropped.
 */
export async function cleanLeftovers(
  config: ResolvedConfig,
  admin: pg.ClientBase,
  logger: Logger = silentLogger,
): Promise<string[]> {
  const dropped: string[] = [];
  for (const name of await findLeftovers(admin)) {
    // Held while dropping, so two cleanups never drop the same database at once.
    if (!(await tryLock(admin, wipLock(name), 'exclusive'))) continue;
    try {
      await dropDatabase(config, admin, name);
      dropped.push(name);
      logger.info(`dropped ${name}, left by a pgtwin run that did not finish`);
    } catch (error) {
      // Another run cleaning at the same moment, or a drop still in progress: the next cleanup retries.
      logger.debug(`could not drop ${name}: ${(error as Error).message}`);
    } finally {
      await unlock(admin, wipLock(name), 'exclusive').catch(() => undefined);
    }
  }
  return dropped;
}

/** A LIKE pattern for names starting with `prefix` (its `_` taken literally). */
function likePrefix(prefix: string): string {
  return `${prefix.replaceAll('_', '\\_')}%`;
}
