/**
 * A condition on a row's `xmin`: written by the transaction `xid` or a newer one. The leak detector and the
 * production baseline both tell "nothing written since" by it.
 */
export function writtenSince(xid: bigint): string {
  // xmin is a 32-bit transaction id, so "newer" wraps around: age() (transactions between an id and now) does
  // that comparison, and is INT_MAX for frozen rows (xmin 2), which are old. Ids 0 to 2 are never assigned,
  // so a start there is the next one, 3. About four times quicker than xmin::text::bigint arithmetic.
  const start = Number(xid % 2n ** 32n);
  return `age(xmin) <= age('${Math.max(start, 3)}'::xid)`;
}

/**
 * A condition on a row's `xmin`: written by a transaction that `snapshot` (`pg_current_snapshot()` as text,
 * `xmin:xmax:xip,…`) does not see, i.e. one that had not committed when the snapshot was taken: `xmax` or
 * newer, or one of those still running then. Rows it sees are older; the condition is exact, unlike
 * {@link writtenSince} of the snapshot's xmin, which also takes in rows committed before it by transactions
 * newer than the oldest one running.
 */
export function unseenBy(snapshot: string): string {
  const [, xmax, running] = snapshot.split(':');
  const newer = writtenSince(BigInt(xmax!));
  if (!running) return newer;
  const ids = running.split(',').map((id) => BigInt(id) % 2n ** 32n);
  return `(${newer} OR xmin = ANY ('{${ids.join(',')}}'::xid[]))`;
}

/**
 * An aggregate over a table's rows: a digest of the rows `snapshot` saw that a transaction newer than its
 * xmin (the oldest running then) wrote, by place and `xmin`. {@link unseenBy} cannot tell a row written in a
 * savepoint of a transaction running at the snapshot: the snapshot lists running transactions, not their
 * subtransactions, whose ids are lower than its xmax. Such a row, committed later, changes this digest (its
 * `xmin` differs from any row the snapshot saw: those transactions had committed), so a reading compares it
 * too. Over the few rows newer than the snapshot's xmin, not the table.
 */
export function recentRowsDigest(snapshot: string): string {
  const [xmin] = snapshot.split(':');
  const recent = `${writtenSince(BigInt(xmin!))} AND NOT ${unseenBy(snapshot)}`;
  return (
    `COALESCE(sum(pg_catalog.hashtextextended(ctid::text || ' ' || xmin::text, 0)::numeric) ` +
    `FILTER (WHERE ${recent}), 0)::text`
  );
}
