import pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import { pastRolledBack, quietPoint, stillQuiet, withOwnWrites } from '../connection/quiet-since.js';
import { parseMarker, type TestMarker } from '../guard/test-marker.js';
import { exemptFromIsolation } from '../isolation/exemption.js';
import {
  formatLeakReport,
  hasLeaks,
  LeakDetector,
  type ContentCounts,
  type LeakBaseline,
  type LeakReport,
} from '../isolation/leak-detector.js';
import type { TwinDatabases } from '../provision/twin-databases.js';
import type { Logger } from '../util/logger.js';

/** A sequence's state: `nextval` is not rolled back with the test transaction, so runs move it. */
type SequenceState = NonNullable<TestMarker['cleanSequences']>[number];

/**
 * Watches the test database, or a worker's, for one run, so the next run can use it without copying the
 * template: started once the database equals the template of `fingerprint`, it takes the leak detector's
 * snapshot (rows and catalogs) and the sequences' values. {@link finish} (global teardown) stamps the
 * database's marker `{ clean: true, fingerprint }` only when nothing was committed outside the tests (no row,
 * no DDL) and no test file opted out of isolation, after putting the sequences back where they were.
 */
export class CleanRunWatch {
  private constructor(
    private readonly target: DatabaseTarget,
    private readonly fingerprint: string,
    private readonly detector: LeakDetector,
    private readonly sequences: readonly SequenceState[],
    /** Whether the counts came from an earlier run's record (`known`) rather than from counting. */
    private readonly recorded: boolean,
    /** The transaction ids the sequences' putting back took (see {@link sequenceWritesSince}). */
    private readonly sequenceWrites: bigint[],
  ) {}

  /**
   * Takes the snapshot of `target`; call it when the database is ready and before any test runs. `verified`: a
   * baseline {@link changedSinceClean} just found the database equal to, which saves counting its rows again.
   * `session`: an open session on `target` to read on (the caller keeps it); else it connects.
   * `known`: the rows and catalogs a fresh copy of the template holds, counted as the template was built or
   * by an earlier run that copied it, taken instead of counting them. `sequences`: with `verified`, the
   * sequences' states the previous run left (its marker's `cleanSequences`); any moved since are put back.
   */
  static async start(
    target: DatabaseTarget,
    fingerprint: string,
    options: {
      verified?: LeakBaseline;
      session?: pg.ClientBase;
      known?: ContentCounts;
      sequences?: readonly SequenceState[];
    } = {},
  ): Promise<CleanRunWatch> {
    const { verified, session, known } = options;
    const detecting = verified
      ? LeakDetector.resume(target.clientConfig(), target.database, verified)
      : LeakDetector.start(target.clientConfig(), session, known);
    // One session's statements run one after another anyway; a connection each reads both at once.
    const onTest = <T>(work: (client: pg.ClientBase) => Promise<T>) =>
      session ? work(session) : withClient(target, work);
    const left = verified && options.sequences;
    const writes: bigint[] = [];
    const sequences = left
      ? onTest(async (client) => {
          // setval is not a row or catalog write: the leak detector's baseline stays valid.
          writes.push(...(await setSequences(client, await movedSequences(client, left))));
          return left;
        })
      : onTest(readSequences);
    const [detector, states] = await Promise.all([detecting, sequences]);
    return new CleanRunWatch(target, fingerprint, detector, states, known !== undefined, writes);
  }

  /**
   * The transaction ids this watch's `setval`s took from `xmax` on: they change the watched database's sequences
   * and nothing else, so production's quiet points list them as pgtwin's own.
   */
  sequenceWritesSince(xmax: string): string[] {
    const from = BigInt(xmax);
    return this.sequenceWrites.filter((xid) => xid >= from).map(String);
  }

  /** The database watched. */
  get database(): string {
    return this.target.database;
  }

  /** The rows and catalogs the database held when the watch started. */
  counts(): ContentCounts {
    const { tables, catalogs } = this.detector.baseline();
    return { tables, catalogs };
  }

  /**
   * Stamps each watched database clean for the next run when this run left it equal to its template; returns
   * for each why not (`undefined`: stamped). Done for all at once, so that no stamp's quiet point has a write
   * of the others after it: every sequence is put back first, then every state is read, then all the stamps
   * are written in one transaction. `testsRan: false` (`pgtwin setup`, which runs no test): each database is
   * stamped with the state {@link start} read, without reading it again; anything committed since, the next
   * run finds. `optedOut`: a test file of the run opted out of isolation (recorded on the test database's
   * marker, which a worker's watch does not read).
   */
  static async finishAll(
    watches: readonly CleanRunWatch[],
    databases: TwinDatabases,
    logger: Logger,
    { testsRan = true, optedOut = false }: { testsRan?: boolean; optedOut?: boolean } = {},
  ): Promise<(string | undefined)[]> {
    const reasons: (string | undefined)[] = watches.map(() => undefined);
    const candidates: { watch: CleanRunWatch; index: number; marker: TestMarker }[] = [];
    for (const [index, watch] of watches.entries()) {
      const marker = await databases.marker(watch.database);
      if (!marker || marker.fingerprint !== watch.fingerprint)
        reasons[index] = `${watch.database} was replaced`;
      else if (marker.optedOut || optedOut) reasons[index] = 'a test file opted out of isolation';
      else candidates.push({ watch, index, marker });
    }
    const states = testsRan
      ? await CleanRunWatch.readStates(
          candidates.map(({ watch }) => watch),
          databases,
          (xmax) => [
            ...databases.markerWritesSince(xmax),
            ...watches.flatMap((watch) => watch.sequenceWritesSince(xmax)),
          ],
          logger,
        )
      : candidates.map(({ watch }) => ({ report: undefined, baseline: watch.detector.baseline() }));
    const stamps: [string, TestMarker][] = [];
    for (const [i, { watch, index, marker }] of candidates.entries()) {
      const { report, baseline } = states[i]!;
      if (report && hasLeaks(report)) {
        logger.debug(formatLeakReport(report));
        reasons[index] = 'changes were committed outside the tests';
        // Perhaps no leak but a wrong record (a write between its copy and its count): the next copy counts.
        if (watch.recorded) {
          const { copyCounts: _dropped, ...rest } = marker;
          stamps.push([watch.database, rest]);
        }
        continue;
      }
      const cleanBaseline = withMarkerWrites(baseline, databases);
      const cleanSequences = [...watch.sequences];
      stamps.push([watch.database, { ...marker, clean: true, cleanBaseline, cleanSequences }]);
    }
    await databases.stampAll(stamps);
    return reasons;
  }

  /**
   * The state now of each watched database, so the next run can tell whether anything was committed between
   * the runs (psql, a dev server). Every sequence is put back first: setval takes a transaction id, which must
   * come before every state's quiet point, or the next run could not prove the state in one statement. When
   * every watch began on a quiet server and each transaction id taken since, but pgtwin's own writes
   * (`ownWritesSince`), rolled back (the tests'), nothing can have been committed: the states are the ones
   * the watches began with, quiet until now, and no table is read (see `pastRolledBack`). Else every table
   * of each database is counted and compared.
   */
  private static async readStates(
    watches: readonly CleanRunWatch[],
    databases: TwinDatabases,
    ownWritesSince: (xmax: string) => string[],
    logger: Logger,
  ): Promise<{ report: LeakReport | undefined; baseline: LeakBaseline }[]> {
    const clients: pg.Client[] = [];
    try {
      const opened = await Promise.all(
        watches.map(async (watch) => {
          const client = exemptFromIsolation(new pg.Client(watch.target.clientConfig()));
          await client.connect();
          clients.push(client);
          return client;
        }),
      );
      await Promise.all(
        watches.map(async (watch, i) => {
          const moved = await movedSequences(opened[i]!, watch.sequences);
          watch.sequenceWrites.push(...(await setSequences(opened[i]!, moved)));
        }),
      );
      const began = watches.map((watch) => watch.detector.baseline());
      const points = began.map((baseline) => baseline.quiet);
      if (points.length > 0 && points.every((point) => point !== undefined)) {
        const earliest = points.reduce((a, b) => (BigInt(a.xmax) <= BigInt(b.xmax) ? a : b));
        const carried = await pastRolledBack(
          await databases.admin(),
          withOwnWrites(earliest, ownWritesSince),
          ownWritesSince,
        );
        if (carried) {
          logger.debug(
            `${watches.map((watch) => watch.database).join(', ')}: nothing committed on the server during the run but rolled-back transactions and pgtwin's own writes; not read again`,
          );
          return began.map((baseline) => ({ report: undefined, baseline: { ...baseline, quiet: carried } }));
        }
      }
      return await Promise.all(watches.map((watch, i) => watch.detector.checkAndRebase(opened[i]!)));
    } finally {
      await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    }
  }
}

/** `baseline` with the marker writes made since its quiet point, which the stamp about to be written records. */
function withMarkerWrites(baseline: LeakBaseline, databases: TwinDatabases): LeakBaseline {
  const { quiet } = baseline;
  return quiet
    ? { ...baseline, quiet: withOwnWrites(quiet, (xmax) => databases.markerWritesSince(xmax)) }
    : baseline;
}

/**
 * Whether a test or worker database (`target`) stamped clean is still as the previous run left it: nothing
 * committed since (rows, DDL). When the baseline was taken with no transaction running, and the server has
 * taken no transaction id since but for pgtwin's own markers, one statement on `admin` proves it (`quiet:
 * true`, see `QuietPoint`); else every table is counted and compared exactly with the baseline. Returns why
 * not, or the baseline of its state now, for {@link CleanRunWatch.start}. `ownWritesSince`: the ids the
 * current run's own writes took from `xmax` on (its markers, another database's sequences put back), which
 * change nothing in `target`. @default none
 */
export async function changedSinceClean(
  target: DatabaseTarget,
  marker: TestMarker,
  admin: pg.ClientBase,
  ownWritesSince?: (xmax: string) => string[],
): Promise<{ changed: string } | { unchanged: LeakBaseline; quiet: boolean }> {
  if (!marker.clean || !marker.cleanBaseline) return { changed: 'it was not left clean' };
  const { quiet } = marker.cleanBaseline;
  if (quiet) {
    // The marker row's xmin is the id its stamp took; read with it, so a stamp written since is seen.
    const { rows } = await admin.query<{ now: string; stamp: string | null; comment: string | null }>(
      `SELECT pg_catalog.pg_current_snapshot()::text AS now, d.xmin::text AS stamp, d.description AS comment
         FROM pg_catalog.pg_database b
         LEFT JOIN pg_catalog.pg_shdescription d
           ON d.objoid = b.oid AND d.classoid = 'pg_catalog.pg_database'::pg_catalog.regclass
        WHERE b.datname = $1`,
      [target.database],
    );
    const row = rows[0];
    if (
      row?.stamp &&
      JSON.stringify(parseMarker(row.comment)) === JSON.stringify(marker) &&
      stillQuiet(
        ownWritesSince ? { ...quiet, own: [...quiet.own, ...ownWritesSince(quiet.xmax)] } : quiet,
        row.stamp,
        row.now,
      )
    ) {
      return { unchanged: { ...marker.cleanBaseline, quiet: quietPoint(row.now)! }, quiet: true };
    }
  }
  const detector = LeakDetector.resume(target.clientConfig(), target.database, marker.cleanBaseline);
  const { report, baseline } = await detector.checkAndRebase();
  return hasLeaks(report)
    ? { changed: `changes were committed since the previous run: ${formatLeakReport(report)}` }
    : { unchanged: baseline, quiet: false };
}

/**
 * Stamps a test or worker database's marker for a run that starts using it as a copy of the template of
 * `fingerprint`: not clean (a crash must not leave a stale "clean"), no opt-out yet, this run's.
 */
export async function markRunStarted(
  databases: TwinDatabases,
  database: string,
  marker: TestMarker,
): Promise<void> {
  await databases.stamp(database, runStartedMarker(marker));
}

/** `marker` without what only a finished run may say (see {@link markRunStarted}). */
export function runStartedMarker(marker: TestMarker): TestMarker {
  const { clean: _clean, cleanBaseline: _baseline, optedOut: _optedOut, ...rest } = marker;
  return rest;
}

/** Records on the test database's marker that a test file opted out of isolation in this run. */
export async function markOptedOut(databases: TwinDatabases, database: string): Promise<void> {
  const marker = await databases.marker(database);
  if (marker && !marker.optedOut)
    await databases.stamp(database, { ...marker, optedOut: true, clean: false });
}

async function readSequences(client: pg.ClientBase): Promise<SequenceState[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'S' AND n.nspname !~ '^pg_' ORDER BY 1`,
  );
  if (rows.length === 0) return [];
  const sql = rows
    .map(
      ({ name }) =>
        `SELECT ${client.escapeLiteral(name)} AS name, last_value::text AS "lastValue", is_called AS "isCalled" FROM ${name}`,
    )
    .join(' UNION ALL ');
  return (await client.query<SequenceState>(sql)).rows;
}

/** The sequences of `before` whose state is no longer what it was (one dropped since is DDL the leak check sees). */
async function movedSequences(
  client: pg.ClientBase,
  before: readonly SequenceState[],
): Promise<SequenceState[]> {
  const now = new Map((await readSequences(client)).map((state) => [state.name, state]));
  return before.filter((state) => {
    const current = now.get(state.name);
    return (
      current !== undefined && (current.lastValue !== state.lastValue || current.isCalled !== state.isCalled)
    );
  });
}

/**
 * Puts the sequences back to `states` in one statement; returns the transaction id that took, if any
 * (`setval` logs, and `txid_current()` names its statement's transaction whichever runs first).
 */
async function setSequences(client: pg.ClientBase, states: readonly SequenceState[]): Promise<bigint[]> {
  if (states.length === 0) return [];
  const { rows } = await client.query<{ xid: string }>(
    `SELECT pg_catalog.txid_current()::text AS xid, count(pg_catalog.setval(s.name::regclass, s.value, s.called))
       FROM unnest($1::text[], $2::int8[], $3::bool[]) AS s(name, value, called)`,
    [
      states.map((state) => state.name),
      states.map((state) => state.lastValue),
      states.map((state) => state.isCalled),
    ],
  );
  return [BigInt(rows[0]!.xid)];
}

async function withClient<T>(target: DatabaseTarget, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = exemptFromIsolation(new pg.Client(target.clientConfig()));
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
