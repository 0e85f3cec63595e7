import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { quoteIdent, type CatalogTable } from '../structure/table-catalog.js';
import { enforceMirrorPolicy, type MirrorPolicy } from './mirror-policy.js';
import { endTransaction } from '../connection/in-transaction.js';
import { applySessionSettings, beginSnapshot } from './mirror-session.js';
import { replaceTableData } from './replace-table-data.js';
import { readTables } from './resolve-tables.js';
import { readTableSequences } from './table-sequences.js';

/** Options of {@link syncTables}. */
export interface SyncTablesOptions {
  /** Which tables may receive production rows. */
  policy: MirrorPolicy;
  /**
   * Tables to copy, `schema.table` (a bare name means `public`).
   * @default policy.mirror.full
   */
  tables?: readonly string[];
  /**
   * Also copy tables not listed in `mirror.full`. Structure-only tables and project schemas stay refused.
   * @default false
   */
  allowUnmirrored?: boolean;
}

/** What {@link syncTables} copied. */
export interface SyncTablesResult {
  /** Rows copied per table, in the order loaded (referenced tables first). */
  tables: { table: string; rowCount: number }[];
}

/**
 * Makes the target's copies of the mirrored tables hold exactly the source's rows. All source reads share
 * one read-only REPEATABLE READ snapshot; the target is changed in one transaction, so on any failure
 * (including the source dying mid-copy) it stays as it was. Rows stream from `COPY ... TO STDOUT` into
 * `COPY ... FROM STDIN` in text format, never held in memory; generated columns are left out and
 * recomputed by the target; triggers do not fire; owned sequences get the source's values.
 *
 * Text rather than binary COPY: it reads back on any server version and for types without binary I/O, and
 * is the format dump files use. Its rendering of dates, floats and the like is pinned by
 * {@link MIRROR_SESSION_SETTINGS} on both connections.
 *
 * `source` should be opened read-only; neither client may be inside a transaction.
 *
 * @example
 * ```ts
 * const { tables } = await syncTables(production, test, { policy: config });
 * // [{ table: 'public.object_models', rowCount: 42 }, { table: 'public.prompts', rowCount: 310 }]
 * ```
 */
export async function syncTables(
  source: pg.ClientBase,
  target: pg.ClientBase,
  options: SyncTablesOptions,
): Promise<SyncTablesResult> {
  const names = (options.tables ?? options.policy.mirror.full).map((name) =>
    name.includes('.') ? name : `public.${name}`,
  );
  for (const name of names) enforceMirrorPolicy(options.policy, name, options);

  // A connection lost mid-copy reaches the caller as this function's rejection; the client's own 'error'
  // event would otherwise crash the process when the caller has no listener.
  const ignore = () => undefined;
  source.on('error', ignore);
  target.on('error', ignore);
  await beginSnapshot(source);
  let failure: unknown;
  let copying: Readable | undefined;
  try {
    const tables = await readTables(source, names, 'source database');
    const loads = [];
    for (const table of tables) {
      const columns = copiedColumns(table);
      loads.push({
        table: table.key,
        columns,
        sequences: await readTableSequences(source, table),
        open: () => {
          copying = source.query(
            copyStreams.to(
              `COPY (SELECT ${columns.map(quoteIdent).join(', ')} FROM ${table.qualifiedName}) TO STDOUT`,
            ),
          );
          // The relay takes the hit when the load fails, so the source stream can still be drained.
          const relay = new PassThrough();
          copying.on('error', (error) => {
            copying?.destroy();
            relay.destroy(error);
          });
          return copying.pipe(relay);
        },
      });
    }

    await target.query('BEGIN');
    let loadFailure: unknown;
    try {
      await applySessionSettings(target);
      const rowCounts = await replaceTableData(target, loads);
      return { tables: [...rowCounts].map(([table, rowCount]) => ({ table, rowCount })) };
    } catch (error) {
      loadFailure = error;
      throw error;
    } finally {
      await endTransaction(target, loadFailure);
    }
  } catch (error) {
    failure = error;
    if (copying) await drain(copying);
    throw error;
  } finally {
    await endTransaction(source, failure);
    source.off('error', ignore);
    target.off('error', ignore);
  }
}

/** The columns COPY moves: all but generated ones, which the target computes itself. */
export function copiedColumns(table: CatalogTable): string[] {
  return table.columns.filter((column) => column.generated === null).map((column) => column.name);
}

// A COPY the target gave up on is still streaming from the source; read it to its end so the source
// connection accepts the ROLLBACK that follows.
async function drain(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return;
  stream.unpipe();
  stream.resume();
  await finished(stream).catch(() => undefined);
}
