import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { currentRun } from '../guard/test-marker.js';

/** Prefix of published templates: `pgtwin_tpl_<12 hex of the fingerprint>`. */
export const TEMPLATE_PREFIX = 'pgtwin_tpl_';

/** First advisory-lock key of every lock pgtwin takes ('pgtw'), so its locks never collide with the application's. */
const LOCK_CLASS = 0x70677477;

/** The name a template built for `fingerprint` is published under. */
export function templateName(fingerprint: string): string {
  return TEMPLATE_PREFIX + fingerprint.slice(0, 12);
}

/**
 * Advisory-lock keys. All of them are taken on the admin connection's database (advisory locks are per
 * database), so every run on a server that uses the same admin database sees the others' locks.
 * - `lease`: shared by each run using the template; dropping it needs it exclusively.
 * - `build`: exclusive while a template for the fingerprint is built.
 * - `run`: shared by a live run for its whole life; nobody holding it proves the run is gone, on any host.
 * - `wip`: exclusive while a database is created under its work-in-progress name and until it is in place.
 */
export type LockName = `lease:${string}` | `build:${string}` | `run:${string}` | `wip:${string}`;

/** The second advisory-lock key for `name`. */
export function lockKey(name: LockName): number {
  return createHash('sha256').update(name).digest().readInt32BE(0);
}

export function leaseLock(template: string): LockName {
  return `lease:${template}`;
}

export function buildLock(fingerprint: string): LockName {
  return `build:${fingerprint.slice(0, 12)}`;
}

export function runLock(run: string): LockName {
  return `run:${run}`;
}

export function wipLock(database: string): LockName {
  return `wip:${database}`;
}

/** Waits for the lock (session-level); released by {@link unlock} or when the session ends. */
export async function lock(
  client: pg.ClientBase,
  name: LockName,
  mode: 'shared' | 'exclusive',
): Promise<void> {
  const fn = mode === 'shared' ? 'pg_advisory_lock_shared' : 'pg_advisory_lock';
  await client.query(`SELECT ${fn}($1, $2)`, [LOCK_CLASS, lockKey(name)]);
}

/** Takes the lock if nobody else holds it in a conflicting mode; never waits. */
export async function tryLock(
  client: pg.ClientBase,
  name: LockName,
  mode: 'shared' | 'exclusive',
): Promise<boolean> {
  const fn = mode === 'shared' ? 'pg_try_advisory_lock_shared' : 'pg_try_advisory_lock';
  const { rows } = await client.query<{ ok: boolean }>(`SELECT ${fn}($1, $2) AS ok`, [
    LOCK_CLASS,
    lockKey(name),
  ]);
  return rows[0]!.ok;
}

export async function unlock(
  client: pg.ClientBase,
  name: LockName,
  mode: 'shared' | 'exclusive',
): Promise<void> {
  const fn = mode === 'shared' ? 'pg_advisory_unlock_shared' : 'pg_advisory_unlock';
  await client.query(`SELECT ${fn}($1, $2)`, [LOCK_CLASS, lockKey(name)]);
}

/**
 * Whether any session holds `name`, read from `pg_locks` rather than probed with a try-lock: a probe takes
 * the lock for a moment, and parallel probes of one dead run would each see the other's as a live holder.
 */
export async function lockHeld(client: pg.ClientBase, name: LockName): Promise<boolean> {
  const { rows } = await client.query<{ held: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid = $1::int4::oid AND objid = $2::int4::oid) AS held`,
    [LOCK_CLASS, lockKey(name)],
  );
  return rows[0]!.held;
}

/** Whether a session holds the run lock of `run` (`host:pid`): proof, on any host, that the run is alive. */
export async function runHoldsLock(client: pg.ClientBase, run: string): Promise<boolean> {
  return run === currentRun() || lockHeld(client, runLock(run));
}

/**
 * Whether the run `run` (`host:pid`) may still be alive: it holds its run lock (any host), or it is on this
 * host and its process exists. Runs on other hosts that hold no run lock count as gone; callers pair this
 * with an age limit.
 */
export async function runIsAlive(client: pg.ClientBase, run: string): Promise<boolean> {
  if (await runHoldsLock(client, run)) return true;
  const separator = run.lastIndexOf(':');
  const host = run.slice(0, separator);
  const pid = Number(run.slice(separator + 1));
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
