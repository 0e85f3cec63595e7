import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { endTransaction } from '../connection/in-transaction.js';
import { MirrorError } from '../errors.js';
import { quoteIdent, type CatalogTable } from '../structure/table-catalog.js';
import { enforceMirrorPolicy, type MirrorPolicy } from './mirror-policy.js';
import { applySessionSettings, exportSnapshot, joinSnapshot, PARALLEL_SESSIONS } from './mirror-session.js';
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
}

/**
 * Copies the mirrored tables' rows from `source` into a target whose tables were just created and are empty,
 * with no keys, indexes, foreign keys or triggers yet (pg_restore's order: they are created after, once each).
 * Tables are copied at once, largest first, each over its own source and target session; all source
 * sessions read one snapshot, exported from a read-only REPEATABLE READ transaction on `source`, so the rows
 * are as consistent as {@link syncTables}' single session. Each table is loaded in its own target transaction,
 * frozen (`COPY ... FREEZE`, so no later reader has to set hint bits) unless partitioned, with its sequences'
 * values. A failure leaves the target partly loaded: build a new database with it, never fill a live one.
 *
 * `source` should be read-only and `openSource` must open read-only sessions; `source` must not be inside a
 * transaction. Returns the rows copied per table, largest table first.
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
  const sessionCount = Math.max(1, Math.min(options.sessions ?? PARALLEL_SESSIONS, names.length));
  // Connecting takes a round trip or three; done while the snapshot's catalog is read.
  const connecting = Array.from({ length: sessionCount }, async () => ({
    source: await open(options.openSource),
    target: await open(options.openTarget),
  }));
  for (const pair of connecting) pair.catch(ignore);

  source.on('error', ignore);
  let failure: unknown;
  try {
    const snapshot = await exportSnapshot(source);
    const queue = await largestFirst(source, await readTables(source, names, 'source database'));
    const rowCounts: { table: string; rowCount: number }[] = [];
    await Promise.all(
      connecting.map(async (pairing) => {
        const pair = await pairing;
        await joinSnapshot(pair.source, snapshot);
        for (let load = queue.shift(); load && failure === undefined; load = queue.shift()) {
          try {
            rowCounts.push({ table: load.table.key, rowCount: await copyTable(pair, load) });
          } catch (error) {
            failure ??= error;
            throw error;
          }
        }
      }),
    );
    return { tables: rowCounts };
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

interface TableToLoad {
  table: CatalogTable;
  sequences: readonly SequenceValue[];
}

/** The tables with their sequences' values, read in the snapshot, in decreasing size on disk. */
async function largestFirst(source: pg.ClientBase, tables: readonly CatalogTable[]): Promise<TableToLoad[]> {
  const { rows } = await source.query<{ bytes: string }>(
    `SELECT (SELECT coalesce(sum(pg_catalog.pg_relation_size(relid)), 0) FROM pg_catalog.pg_partition_tree(t::regclass))::text AS bytes
       FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n`,
    [tables.map((table) => table.qualifiedName)],
  );
  const loads = [];
  for (const [index, table] of tables.entries()) {
    loads.push({
      table,
      sequences: await readTableSequences(source, table),
      bytes: BigInt(rows[index]!.bytes),
    });
  }
  return loads.sort((a, b) => (a.bytes === b.bytes ? 0 : a.bytes > b.bytes ? -1 : 1));
}

/** Streams one table from the source session into the target in a transaction of its own; returns its rows. */
async function copyTable(pair: { source: pg.Client; target: pg.Client }, load: TableToLoad): Promise<number> {
  const { table } = load;
  const columns = copiedColumns(table).map(quoteIdent).join(', ');
  const { target } = pair;
  await target.query('BEGIN');
  let failure: unknown;
  try {
    await applySessionSettings(target);
    // FREEZE needs the table emptied in this transaction; partitioned tables cannot take it.
    if (!table.partitioned) await target.query(`TRUNCATE ${table.qualifiedName}`);
    const copyIn = copyStreams.from(
      `COPY ${table.qualifiedName} (${columns}) FROM STDIN${table.partitioned ? '' : ' WITH (FREEZE)'}`,
    );
    await pipeline(
      pair.source.query(copyStreams.to(`COPY (SELECT ${columns} FROM ${table.qualifiedName}) TO STDOUT`)),
      target.query(copyIn),
    );
    await writeTableSequences(target, table, load.sequences);
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
