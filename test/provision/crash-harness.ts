import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { lockHeld, wipLock } from '../../src/provision/template-locks.js';
import { adminQuery, databaseUrl, SERVER_URL } from '../helpers/databases.js';

/** A child process whose stdout and stderr lines are watched, killable with its whole process group. */
export interface Watched {
  readonly pid: number;
  /** Everything it printed so far, stdout and stderr interleaved by line. */
  output(): string;
  /** Resolves with the first line matching `pattern` (seen already or to come); SIGKILLs the group at that very line with `kill`. */
  waitForLine(pattern: RegExp, options?: { kill?: boolean; timeoutMs?: number }): Promise<string>;
  /** SIGKILLs the process group and waits for the process to be gone. */
  kill(): Promise<void>;
  /** Exit code (null when killed) once it ended. */
  readonly exited: Promise<number | null>;
  /** Whether it has ended. */
  done(): boolean;
}

const running = new Set<Watched>();

/**
 * Spawns `node ...args` in a process group of its own (so a runner's workers die with it, as when CI kills a
 * job) and watches its output line by line.
 */
export function spawnWatched(args: string[], options: { env: Record<string, string>; cwd: string }): Watched {
  const child = spawn(process.execPath, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<{ pattern: RegExp; kill: boolean; resolve: (line: string) => void }> = [];
  let ended = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      ended = true;
      running.delete(watched);
      resolve(code);
    }),
  );
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const onLine = (line: string) => {
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (!waiter.pattern.test(line)) continue;
      if (waiter.kill) killGroup();
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);

  const watched: Watched = {
    pid: child.pid!,
    output: () => lines.join('\n'),
    waitForLine(pattern, { kill = false, timeoutMs = 60_000 } = {}) {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) {
        if (kill) killGroup();
        return Promise.resolve(seen);
      }
      return new Promise<string>((resolve, reject) => {
        const waiter = { pattern, kill, resolve };
        waiters.push(waiter);
        const fail = (why: string) => {
          const index = waiters.indexOf(waiter);
          if (index < 0) return;
          waiters.splice(index, 1);
          reject(
            new Error(`${why} before printing a line matching ${pattern}; its output:\n${watched.output()}`),
          );
        };
        const timer = setTimeout(() => fail(`still running after ${timeoutMs} ms`), timeoutMs);
        // Lines still buffered in the pipes are read before 'close'.
        child.once('close', () => {
          clearTimeout(timer);
          fail('the process ended');
        });
      });
    },
    async kill() {
      killGroup();
      await exited;
    },
    exited,
    done: () => ended,
  };
  running.add(watched);
  return watched;
}

/** Kills every watched process still running (after a failed test). */
export async function killAllWatched(): Promise<void> {
  for (const watched of [...running]) await watched.kill();
}

async function client(database = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: database === 'postgres' ? SERVER_URL : databaseUrl(database) });
  await c.connect();
  c.on('error', () => undefined);
  return c;
}

async function backendPid(c: pg.Client): Promise<number> {
  return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

/** A backend that waits for one of the locks a {@link CreateDatabaseBlock} holds. */
export interface LockWaiter {
  pid: number;
  query: string;
  /** The database whose lock it waits for. */
  locked: string;
}

/** Holds the locks that make `CREATE DATABASE ... TEMPLATE <db>` wait; see {@link blockCreateDatabase}. */
export interface CreateDatabaseBlock {
  /**
   * Waits until a `CREATE DATABASE` whose text `match`es waits on a held lock, letting every other waiter
   * through (the first `skip` matching ones too), and returns the matching waiters at that moment. `abort`
   * is polled: a string it returns fails the wait (e.g. the process under test ended).
   */
  waitForCreate(
    match: (query: string) => boolean,
    options?: { skip?: number; timeoutMs?: number; abort?: () => string | undefined },
  ): Promise<LockWaiter[]>;
  /**
   * Ends the held transactions (nothing they did is kept) and returns the backends that were waiting on
   * them: orphans of a killed process among them go on with their statement. Idempotent.
   */
  release(): Promise<number[]>;
}

const blocks = new Set<CreateDatabaseBlock>();

/**
 * Makes `CREATE DATABASE` wait when it copies one of `databases` (`template1`, and `template0`, for a
 * `CREATE DATABASE` without `TEMPLATE`): `CREATE DATABASE ... TEMPLATE t` takes a ShareLock on `t`, and
 * `COMMENT ON DATABASE t` in an open transaction holds a ShareUpdateExclusiveLock on it until the
 * transaction ends. The comment is set to the one it had (and rolled back anyway).
 *
 * Anything else that waits on these locks (pgtwin stamping a template it reuses, another test file's
 * `CREATE DATABASE`) is let through at once: a second session queues behind it for the same lock, the first
 * ends its transaction, and the waiter runs, then the second holds the lock. The lock queue is FIFO, so the
 * CREATE DATABASE of interest can never slip through in between.
 */
export async function blockCreateDatabase(databases: string[]): Promise<CreateDatabaseBlock> {
  const { rows } = await adminQuery<{ name: string; comment: string | null }>(
    `SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = ANY($1)`,
    [databases],
  );
  if (rows.length !== databases.length)
    throw new Error(`Cannot block: some of ${databases.join(', ')} do not exist.`);
  const comment = new Map(rows.map((row) => [row.name, row.comment]));
  const holders = new Map<string, { client: pg.Client; pid: number }>();
  const observer = await client();
  // Two blocks on one database (another suite on this server blocking template1 too) would each queue a
  // holder behind the other's and wait forever. The observer takes a server-wide advisory lock per blocked
  // database, in one order, so blocks of a database take turns; its session ending (release, or a killed
  // test process) frees them.
  for (const database of [...databases].sort())
    await observer.query(`SELECT pg_advisory_lock(hashtext('pgtwin crash-harness block ' || $1))`, [
      database,
    ]);

  const hold = async (database: string, queued?: (pid: number) => Promise<void>) => {
    const c = await client();
    const pid = await backendPid(c);
    await c.query('BEGIN');
    const text = comment.get(database);
    const statement = c.query(
      `COMMENT ON DATABASE ${c.escapeIdentifier(database)} IS ${text === null ? 'NULL' : c.escapeLiteral(text!)}`,
    );
    await queued?.(pid);
    await statement;
    return { client: c, pid };
  };
  for (const database of databases) holders.set(database, await hold(database));

  const waitingPids = async (database: string): Promise<number[]> => {
    const { rows } = await observer.query<{ pid: number }>(
      `SELECT l.pid FROM pg_locks l JOIN pg_database d ON l.classid = 'pg_database'::regclass AND l.objid = d.oid
        WHERE l.locktype = 'object' AND NOT l.granted AND d.datname = $1`,
      [database],
    );
    return rows.map((row) => row.pid);
  };

  /** Lets the current waiters on `database` through, holding the lock again right behind them. */
  const relay = async (database: string) => {
    const previous = holders.get(database)!;
    const next = await hold(database, async (pid) => {
      for (let tries = 0; !(await waitingPids(database)).includes(pid); tries++) {
        if (tries > 400) throw new Error(`The relay session for ${database} never queued.`);
        await sleep(10);
      }
      await previous.client.query('ROLLBACK');
      await previous.client.end();
    });
    holders.set(database, next);
  };

  let released = false;
  const block: CreateDatabaseBlock = {
    async waitForCreate(match, { skip = 0, timeoutMs = 60_000, abort } = {}) {
      const deadline = Date.now() + timeoutMs;
      const started = Date.now();
      const skipped = new Set<string>();
      // What the block saw and let through, for the error when the awaited CREATE never shows: a failure
      // under load (once in several full runs) left no trace of which waiter went through when.
      const trace: string[] = [];
      // Waiters seen in the previous look whose statement was not a CREATE DATABASE of interest.
      let seenBefore = new Set<string>();
      /** A waiting statement: its backend and when it started. */
      const key = (row: { pid: number; started: string }) => `${row.pid}@${row.started}`;
      for (;;) {
        const mine = [...holders.values()].map((holder) => holder.pid);
        const { rows } = await observer.query<LockWaiter & { started: string }>(
          `SELECT l.pid, a.query, d.datname AS locked, a.query_start::text AS started
             FROM pg_locks l
             JOIN pg_database d ON l.classid = 'pg_database'::regclass AND l.objid = d.oid
             JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'object' AND NOT l.granted AND d.datname = ANY($1) AND NOT l.pid = ANY($2)`,
          [databases, mine],
        );
        // An ungranted lock is the evidence of waiting. Not pg_stat_activity's wait event: a waiting backend
        // woken for something else (its deadlock check, a signal) shows none for a moment, and relaying its
        // database then would let the very CREATE DATABASE of interest through (seen in CI under load).
        const targets = rows.filter((row) => /^\s*CREATE DATABASE/i.test(row.query) && match(row.query));
        for (const target of targets)
          if (!skipped.has(key(target)) && skipped.size < skip) skipped.add(key(target));
        const live = targets.filter((target) => !skipped.has(key(target)));
        if (live.length > 0) return live.map(({ pid, query, locked }) => ({ pid, query, locked }));
        // One look may pair a backend's lock wait with the statement before the one waiting: the query may
        // read pg_stat_activity before pg_locks, and a CREATE DATABASE that began in between shows its lock
        // with its session's previous statement (seen once in ten runs: the awaited CREATE let through as
        // "SELECT current_setting('server_version_num')"). The statement is set before its lock is asked
        // for, so a second look shows it: a waiter that is not of interest goes through only when two looks
        // in a row agree.
        const through = rows.filter((row) => skipped.has(key(row)) || seenBefore.has(key(row)));
        seenBefore = new Set(rows.filter((row) => !skipped.has(key(row))).map(key));
        for (const row of through)
          trace.push(
            `${Date.now() - started} ms: ${row.pid} waits on ${row.locked}${skipped.has(key(row)) ? ' (skipped)' : ''}: ${row.query.replace(/\s+/g, ' ').slice(0, 80)}`,
          );
        const why = abort?.();
        if (why !== undefined)
          throw new Error(
            `${why}\nwhat the block saw, each time before letting it through:\n${trace.join('\n')}`,
          );
        if (Date.now() > deadline)
          throw new Error(
            `No CREATE DATABASE of interest waited within ${timeoutMs} ms; waiting: ${JSON.stringify(rows)}`,
          );
        // A relay lets every waiter on the database through: only when each of them may go.
        const ready = new Set(through.map((row) => row.locked));
        for (const row of rows) if (!through.includes(row)) ready.delete(row.locked);
        for (const database of ready) await relay(database);
        await sleep(20);
      }
    },
    async release() {
      if (released) return [];
      released = true;
      blocks.delete(block);
      const waiting = (await Promise.all(databases.map(waitingPids)).catch(() => [])).flat();
      for (const holder of holders.values()) {
        await holder.client.query('ROLLBACK').catch(() => undefined);
        await holder.client.end().catch(() => undefined);
      }
      await observer.end().catch(() => undefined);
      return waiting;
    },
  };
  blocks.add(block);
  return block;
}

/** Ends every lock block still held (after a failed test). */
export async function releaseAllBlocks(): Promise<void> {
  for (const block of [...blocks]) await block.release();
}

/**
 * Makes every query that reads `tables` of `database` wait, while catalog queries about them go on:
 * `REINDEX TABLE` in an open transaction holds an AccessExclusiveLock on the tables' indexes, which the
 * planner opens for any query on a table (a COPY ... TO STDOUT of a sync), whereas `pg_get_expr` and the
 * like lock only the table itself. Rolled back, the indexes are as before. {@link TableLock.waitForBlocked}
 * returns the first backend that waits.
 */
export async function blockTableReads(database: string, tables: string[]) {
  const holder = await client(database);
  const pid = await backendPid(holder);
  await holder.query('BEGIN');
  for (const table of tables) await holder.query(`REINDEX TABLE ${table}`);
  const observer = await client();
  let released = false;
  const lock = {
    async waitForBlocked({
      timeoutMs = 60_000,
      abort,
    }: { timeoutMs?: number; abort?: () => string | undefined } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { rows } = await observer.query<{ pid: number; query: string }>(
          'SELECT pid, query FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))',
          [pid],
        );
        if (rows.length > 0) return rows[0]!;
        const why = abort?.();
        if (why !== undefined) throw new Error(why);
        if (Date.now() > deadline) throw new Error(`Nothing waited on the lock of ${tables.join(', ')}.`);
        await sleep(20);
      }
    },
    async release() {
      if (released) return;
      released = true;
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end().catch(() => undefined);
      await observer.end().catch(() => undefined);
    },
  };
  return lock;
}

/** Waits until the server backends `pids` have ended (an orphaned backend finishes its statement first). */
export async function waitForBackendsGone(pids: number[], timeoutMs = 60_000): Promise<void> {
  await poll(timeoutMs, async (observer) => {
    const { rows } = await observer.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)',
      [pids],
    );
    return rows.length === 0 ? undefined : `Backends ${rows.map((r) => r.pid).join(', ')} are still there.`;
  });
}

/**
 * Asks `pending` on one session every 20 ms until it returns nothing; throws what it returned last once
 * `timeoutMs` passed. One session for all the looks: a connection per look (a server process forked, a
 * login) cost more CPU than the wait itself, taken from the processes being waited for.
 */
async function poll(
  timeoutMs: number,
  pending: (observer: pg.Client) => Promise<string | undefined>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const observer = await client();
  try {
    for (;;) {
      const reason = await pending(observer);
      if (reason === undefined) return;
      if (Date.now() > deadline) throw new Error(reason);
      await sleep(20);
    }
  } finally {
    await observer.end();
  }
}

/**
 * Waits until no other session is running a statement that names one of `words` (a killed run's statements
 * already sent go on, and a CREATE DATABASE among them completes, after its process is gone).
 */
export async function waitForStatementsDone(words: string[], timeoutMs = 60_000): Promise<void> {
  await poll(timeoutMs, async (observer) => {
    const { rows } = await observer.query<{ pid: number; query: string }>(
      `SELECT pid, query FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE ANY ($1)`,
      [words.map((word) => `%${word}%`)],
    );
    return rows.length === 0 ? undefined : `Statements still running: ${JSON.stringify(rows)}`;
  });
}

/**
 * Waits until no session works on a `pgtwin_wip_` database owned by `role` any more. A killed run's server
 * session goes on with the statement it was running (a COPY, an index build) and holds the database's work
 * lock until then; the next run rightly leaves such a database alone, so the recovery checks start once the
 * killed run's sessions are gone, as a rerun after them would.
 */
export async function waitForWipReleased(role: string, timeoutMs = 120_000): Promise<void> {
  await poll(timeoutMs, async (observer) => {
    const { rows } = await observer.query<{ name: string }>(
      `SELECT datname AS name FROM pg_database
        WHERE datname LIKE 'pgtwin\\_wip\\_%' AND datdba = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
      [role],
    );
    const held: string[] = [];
    for (const { name } of rows) if (await lockHeld(observer, wipLock(name))) held.push(name);
    return held.length === 0 ? undefined : `Work-in-progress databases still held: ${held.join(', ')}`;
  });
}

/** One row of pg_database, as the recovery checks see it. */
export interface DatabaseRow {
  name: string;
  owner: string;
  comment: string | null;
  isTemplate: boolean;
  /** Left invalid by a `DROP DATABASE` that was interrupted. */
  invalid: boolean;
}

/** Every database on the server with its owner and comment. */
export async function databasesState(): Promise<DatabaseRow[]> {
  const { rows } = await adminQuery<DatabaseRow>(
    `SELECT datname AS name, pg_get_userbyid(datdba) AS owner, shobj_description(oid, 'pg_database') AS comment,
            datistemplate AS "isTemplate", datconnlimit = -2 AS invalid
       FROM pg_database ORDER BY datname`,
  );
  return rows;
}

/**
 * What is wrong with the server after a recovery, compared with `before` (the names taken before any pgtwin
 * run): among the new databases of this file (owned by `role`, or named after the test database; other test
 * files create and drop databases meanwhile), any `pgtwin_wip_` / `pgtwin_trash_` / `pgtwin_build_`
 * leftover, any database without a pgtwin marker, anything besides the test database and the `template`;
 * and the test database missing or not stamped `kind: test`. Empty when all is well.
 */
export function recoveryProblems(
  rows: DatabaseRow[],
  before: ReadonlySet<string>,
  expected: { role: string; test: string; template: string | undefined; alsoKept?: readonly string[] },
): string[] {
  const problems: string[] = [];
  const mine = rows.filter(
    (row) => !before.has(row.name) && (row.owner === expected.role || row.name.startsWith(expected.test)),
  );
  for (const row of mine) {
    const marker = markerOf(row.comment);
    // Every run cleans leftovers server-wide, so another crash file's run, killed while dropping this file's
    // leftover, can leave it invalid: that half-dropped database is the killed run's, and the next cleanup
    // drops it (findLeftovers lists it: its name and no lock holder).
    if (/^pgtwin_(wip|trash|build)_/.test(row.name)) {
      if (!row.invalid) problems.push(`leftover ${row.name}`);
    } else if (marker === undefined) problems.push(`unmarked ${row.name}`);
    else if (
      row.name !== expected.test &&
      row.name !== expected.template &&
      !expected.alsoKept?.includes(row.name) &&
      // A clean run keeps the worker databases it left clean, as it keeps the test database.
      !(marker.kind === 'worker' && new RegExp(`^${expected.test}_w[1-9][0-9]*$`).test(row.name))
    )
      problems.push(`unexpected ${row.name} (kind ${marker.kind})`);
  }
  const test = rows.find((row) => row.name === expected.test);
  if (!test) problems.push(`test database ${expected.test} missing`);
  else if (markerOf(test.comment)?.kind !== 'test')
    problems.push(`test database ${expected.test} stamped ${JSON.stringify(test.comment)}, not kind test`);
  if (expected.template !== undefined && !rows.some((row) => row.name === expected.template))
    problems.push(`template ${expected.template} missing`);
  return problems;
}

function markerOf(comment: string | null): { kind?: string } | undefined {
  if (comment === null || !comment.startsWith('pgtwin:')) return undefined;
  try {
    return JSON.parse(comment.slice('pgtwin:'.length)) as { kind?: string };
  } catch {
    return undefined;
  }
}

/** The template a run's output names on its `template` phase line. */
export function templateOf(output: string): string | undefined {
  return /^\[pgtwin\] template .*?(pgtwin_tpl_[0-9a-f]{12})/m.exec(output)?.[1];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
