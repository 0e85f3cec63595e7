/**
 * A condition on a row's `xmin`: written by the transaction `xid` or a newer one. The leak detector and the
 * checksum baseline both tell "nothing written since" by it.
 */
export function writtenSince(xid: bigint): string {
  // xmin is a 32-bit transaction id, so "newer" wraps around: age() (transactions between an id and now) does
  // that comparison, and is INT_MAX for frozen rows (xmin 2), which are old. Ids 0 to 2 are never assigned,
  // so a start there is the next one, 3. About four times quicker than xmin::text::bigint arithmetic.
  const start = Number(xid % 2n ** 32n);
  return `age(xmin) <= age('${Math.max(start, 3)}'::xid)`;
}
