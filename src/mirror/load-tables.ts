import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { isOutOfConnections } from '../connection/connect.js';
import { endTransaction } from '../connection/in-transaction.js';
import { MirrorError } from '../errors.js';
import { quoteIdent } from '../structure/table-catalog.js';
import { enforceMirrorPolicy, type MirrorPolicy } from './mirror-policy.js';
import { applySessionSettings, joinSnapshot, PARALLEL_SESSIONS, shareSnapshot } from './mirror-session.js';
import { pageRanges, pageRangeSql, sessionsFor, type TableUnit } from './page-ranges.js';
import { readTables } from './resolve-tables.js';
import { copiedColumns, type SyncTablesResult } from './sync-tables.js';
import { readTableSequences, writeTableSequences, type SequenceValue } from './table-sequences.js';

/** Options of {@link loadTables}. */
export interface LoadTablesOptions {
  /** Which tables may receive production rows; `policy.mirror.full` are copied. */
  policy: MirrorPolicy;
  /** Opens another read-only session on the source database (production). */
  openSource: () => Promise<pg.Client>;
  /** Opens another session on the target database. */
  openTarget: () => Promise<pg.Client>;
  /** @default PARALLEL_SESSIONS */
  sessions?: number;
  /** Called with a table's key once all its rows are in, while other tables may still be loading. */
  onTableLoaded?: (table: string) => void;
  /**
   * Called before any row is copied with how many sessions the rows are worth ({@link sessionsFor}): what
   * builds the indexes over them needs no more.
   */
  onPlanned?: (sessions: number) => void;
  /**
   * An exported snapshot (`holdSnapshot`) to copy from, kept open by its exporter until the copy ends:
   * the state another reading (the fingerprint's checksums) saw. @default one `source` exports
   */
  snapshot?: string;
}

/**
 * Copies the mirrored tables' rows from `source` into a target whose tables were just created and are empty,
 * with no keys, indexes, foreign keys or triggers yet (pg_restore's order: they are created after, once each).
 * Several pairs of source and target sessions copy at once, largest first: small tables whole, large ones cut
 * into ranges of pages (so the target's per-row work, generated columns and checks, runs on several cores);
 * a pair the server has no connection slot for (`too_many_connections`) leaves its share to the others.
 * All source sessions read one snapshot, exported from a read-only REPEATABLE READ transaction on `source`,
 * so the rows are as consistent as {@link syncTables}' single session. Each unit is loaded in its own target
 * transaction; a table loaded whole is frozen (`COPY ... FREEZE`, so no later reader has to set hint bits)
 * unless partitioned; the sequences get the source's values. A failure leaves the target partly loaded:
 * build a new database with it, never fill a live one.
 *
 * `source` should be read-only and `openSource` must open read-only sessions; `source` must not be inside a
 * transaction. Returns the rows copied per table.
 *
 * @example
 * ```ts
 * const { tables } = await loadTables(production, {
 *   policy: config,
 *   openSource: () => connect(config.production, 'production'),
 *   openTarget: () => connect(target, 'test'),
 * });
 * ```
 */
export async function loadTables(
  source: pg.ClientBase,
  options: LoadTablesOptions,
): Promise<SyncTablesResult> {
  const names = options.policy.mirror.full.map((name) => (name.includes('.') ? name : `public.${name}`));
  for (const name of names) enforceMirrorPolicy(options.policy, name, {});
  if (names.length === 0) return { tables: [] };

  const opened: pg.Client[] = [];
  const ignore = () => undefined;
  const open = async (connect: () => Promise<pg.Client>) => {
    const client = await connect();
    // A session lost mid-copy reaches the caller as this function's rejection, not as an unhandled 'error'.
    client.on('error', ignore);
    opened.push(client);
    return client;
  };
  const sessionCount = Math.max(1, options.sessions ?? PARALLEL_SESSIONS);
  let connecting: Promise<{ source: pg.Client; target: pg.Client }>[] = [];

  source.on('error', ignore);
  let failure: unknown;
  let refused: unknown;
  try {
    const snapshot = await shareSnapshot(source, options.snapshot);
    const tables = await readTables(source, names, 'source database');
    const queue = await pageRanges(source, tables, sessionCount);
    const pairs = sessionsFor(queue, sessionCount);
    options.onPlanned?.(pairs);
    // Connecting takes a few round trips: done while the sequences are read.
    connecting = Array.from({ length: pairs }, async () => {
      const pairSource = await open(options.openSource);
      try {
        return { source: pairSource, target: await open(options.openTarget) };
      } catch (error) {
        await pairSource.end().catch(ignore);
        throw error;
      }
    });
    for (const pair of connecting) pair.catch(ignore);
    const sequences = new Map<string, readonly SequenceValue[]>();
    for (const table of tables) sequences.set(table.key, await readTableSequences(source, table));
    const rowCounts = new Map(tables.map((table) => [table.key, 0]));
    const unitsLeft = new Map<string, number>();
    for (const unit of queue) unitsLeft.set(unit.table.key, (unitsLeft.get(unit.table.key) ?? 0) + 1);
    await Promise.all(
      connecting.map(async (pairing) => {
        let pair: { source: pg.Client; target: pg.Client };
        try {
          pair = await pairing;
        } catch (error) {
          // No connection slot left for this pair: the pairs that connected copy its share.
          if (!isOutOfConnections(error)) throw error;
          refused = error;
          return;
        }
        await joinSnapshot(pair.source, snapshot);
        for (let unit = queue.shift(); unit && failure === undefined; unit = queue.shift()) {
          try {
            const rows = await copyUnit(pair, unit, unit.range?.from ? [] : sequences.get(unit.table.key)!);
            rowCounts.set(unit.table.key, rowCounts.get(unit.table.key)! + rows);
            unitsLeft.set(unit.table.key, unitsLeft.get(unit.table.key)! - 1);
            if (unitsLeft.get(unit.table.key) === 0) options.onTableLoaded?.(unit.table.key);
          } catch (error) {
            failure ??= error;
            throw error;
          }
        }
        // Done while other pairs still copy: its connections are freed now, for the indexes being built.
        if (failure === undefined) await Promise.all([pair.source.end(), pair.target.end()]).catch(ignore);
      }),
    );
    // Every pair was refused: nothing copied what is left.
    if (queue.length > 0) throw refused;
    return { tables: [...rowCounts].map(([table, rowCount]) => ({ table, rowCount })) };
  } catch (error) {
    failure ??= error;
    throw failure;
  } finally {
    await endTransaction(source, failure);
    source.off('error', ignore);
    // Sessions still copying after a failure are cut off: the target is being thrown away.
    await Promise.allSettled(connecting);
    await Promise.all(opened.map((client) => client.end().catch(ignore)));
  }
}

/**
 * Streams one table, or one range of its pages, from the source session into the target in a transaction of
 * its own, setting `sequences`; returns the rows copied. A whole table is loaded frozen (FREEZE needs the
 * table emptied in the same transaction, which would keep the other ranges' sessions out).
 */
async function copyUnit(
  pair: { source: pg.Client; target: pg.Client },
  { table, range }: TableUnit,
  sequences: readonly SequenceValue[],
): Promise<number> {
  const columns = copiedColumns(table).map(quoteIdent).join(', ');
  const { target } = pair;
  const freeze = !range && !table.partitioned;
  await target.query('BEGIN');
  let failure: unknown;
  try {
    await applySessionSettings(target);
    if (freeze) await target.query(`TRUNCATE ${table.qualifiedName}`);
    const copyIn = copyStreams.from(
      `COPY ${table.qualifiedName} (${columns}) FROM STDIN${freeze ? ' WITH (FREEZE)' : ''}`,
    );
    await pipeline(
      pair.source.query(
        copyStreams.to(
          `COPY (SELECT ${columns} FROM ${table.qualifiedName}${pageRangeSql(range)}) TO STDOUT`,
        ),
      ),
      target.query(copyIn),
    );
    await writeTableSequences(target, table, sequences);
    return copyIn.rowCount;
  } catch (error) {
    failure = error;
    throw new MirrorError(
      table.key,
      `Copying the rows of ${table.key} failed: ${(error as Error).message}. Nothing was published; fix the cause and run again.`,
      { cause: error },
    );
  } finally {
    await endTransaction(target, failure);
  }
}
