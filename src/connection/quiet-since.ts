import type pg from 'pg';

/**
 * A proof that nothing was committed on a server since a state was read, without reading a row: every
 * transaction that writes (rows, DDL, sequences' logged steps, ANALYZE) takes a transaction id, and ids are
 * taken in order. A state read when no transaction was running stays the state as long as every id taken
 * since belongs to a transaction known to change nothing it covers: pgtwin's own marker writes (a comment on
 * a database), and for production the test database's sequences put back, or one that rolled back
 * ({@link pastRolledBack}). The server's next id then tells, in one statement, what the rows would tell in a
 * scan of every table.
 */
export interface QuietPoint {
  /** The server's next transaction id (`pg_current_snapshot()`'s xmax, 64-bit) when the state was read. */
  xmax: string;
  /** The ids pgtwin's own writes took since, before the stamp that records this point. */
  own: string[];
}

const XID_WRAP = 2n ** 32n;
/** The longest window {@link pastRolledBack} looks up id by id: 200,000 ids take about 0.1 s. */
const ROLLED_BACK_WINDOW_MAX = 200_000;

/** `pg_current_snapshot()` as text (`xmin:xmax:xip,…`), parsed. */
function parseSnapshot(text: string): { xmax: bigint; running: string[] } {
  const [, xmax, running] = text.split(':');
  return { xmax: BigInt(xmax!), running: running ? running.split(',') : [] };
}

/**
 * The quiet point of a state read after `snapshot` was taken: `undefined` when a transaction was running
 * then (it may commit a change later, under an id older than the snapshot's xmax).
 */
export function quietPoint(snapshot: string): QuietPoint | undefined {
  const { xmax, running } = parseSnapshot(snapshot);
  return running.length === 0 ? { xmax: xmax.toString(), own: [] } : undefined;
}

/** `point` with the ids pgtwin's own marker writes took from it on (`writesSince`, see `TwinDatabases`). */
export function withOwnWrites(point: QuietPoint, writesSince: (xmax: string) => string[]): QuietPoint {
  return { xmax: point.xmax, own: writesSince(point.xmax) };
}

/**
 * Whether a state recorded at `point` still holds at `now` (`pg_current_snapshot()` as text): no transaction
 * is running, and every id taken since the point is one of `point.own` or the stamp's, `stamp` being the
 * 32-bit `xmin` of the marker row that records the point (`undefined`: no stamp, as for a server pgtwin only
 * reads). Exact: a write by anything else took an id in
 * between, and is seen as such however it was done (psql, an application, another pgtwin run).
 */
export function stillQuiet(point: QuietPoint, stamp: string | undefined, now: string): boolean {
  const current = parseSnapshot(now);
  if (current.running.length > 0) return false;
  const from = BigInt(point.xmax);
  if (current.xmax < from || current.xmax - from > BigInt(point.own.length + 1)) return false;
  const own = new Set(point.own);
  let stampSeen = false;
  for (let id = from; id < current.xmax; id++) {
    if (own.has(id.toString())) continue;
    if (!stampSeen && stamp !== undefined && (id % XID_WRAP).toString() === stamp) {
      stampSeen = true;
      continue;
    }
    return false;
  }
  return true;
}

/**
 * Whether nothing can have been committed between two snapshots (`pg_current_snapshot()` as text) of one
 * server: no transaction running at either, and no transaction id taken in between. For a server pgtwin only
 * reads (production), whose state read at `then` therefore still holds.
 */
export function unchangedSince(then: string, now: string): boolean {
  const point = quietPoint(then);
  return point !== undefined && stillQuiet(point, undefined, now);
}

/**
 * `point` carried forward to the server's present when every id taken since, but `point.own`, belongs to a
 * transaction that rolled back (`pg_xact_status` says `aborted`, read in the same statement as the present):
 * a rolled-back transaction changed nothing, so the state recorded at `point` still holds at the point
 * returned, which lists pgtwin's own writes from there on (`writesSince`). A test run's statements take ids
 * although every one is rolled back; this keeps them from breaking the chain. `undefined` when another id
 * committed (or is too old for its status to be kept), a transaction is running, or the window is longer than
 * 200,000 ids.
 */
export async function pastRolledBack(
  client: pg.ClientBase,
  point: QuietPoint,
  writesSince: (xmax: string) => string[],
): Promise<QuietPoint | undefined> {
  const { rows } = await client.query<{ now: string; other: number | null }>(
    `SELECT s::text AS now,
       CASE WHEN pg_catalog.pg_snapshot_xmax(s)::text::int8 - $1::int8 <= ${ROLLED_BACK_WINDOW_MAX} THEN
         (SELECT count(*)::int FROM pg_catalog.generate_series($1::int8, pg_catalog.pg_snapshot_xmax(s)::text::int8 - 1) AS id
           WHERE id <> ALL ($2::int8[])
             AND pg_catalog.pg_xact_status(id::text::xid8) IS DISTINCT FROM 'aborted')
       END AS other
     FROM pg_catalog.pg_current_snapshot() AS s`,
    [point.xmax, point.own],
  );
  const row = rows[0]!;
  const now = quietPoint(row.now);
  if (!now || row.other !== 0 || BigInt(now.xmax) < BigInt(point.xmax)) return undefined;
  return withOwnWrites(now, writesSince);
}
