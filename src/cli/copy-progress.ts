import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import { connect, type TargetRole } from '../connection/connect.js';
import { formatCount, type Terminal } from './terminal.js';

const POLL_MS = 500;
/** The first look: a warm setup is done well before, and the watch then never opens a session for nothing. */
const FIRST_POLL_MS = 1000;

/** A running watch; `stop()` ends it and closes its connection. */
export interface CopyProgress {
  /** Whether a copy was seen at the last look. */
  active(): boolean;
  stop(): Promise<void>;
}

/**
 * Shows rows copied and the rate while the role `user` loads tables with COPY, read from PostgreSQL's
 * `pg_stat_progress_copy` (PostgreSQL 14 and later) on a connection of the watch's own to `via`: the test
 * database as the test role (which sees its own sessions; tables are named), or the admin database (which
 * sees every database, e.g. a template being built; the database is named). The loading code needs no hook;
 * on older servers, or if the watch cannot connect, nothing is shown.
 */
export function watchCopyProgress(
  via: { target: DatabaseTarget; role: TargetRole },
  user: string,
  terminal: Terminal,
): CopyProgress {
  let client: pg.Client | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> = Promise.resolve();
  const started = new Map<string, { at: number; rows: number }>();
  let copying = false;

  const poll = async () => {
    try {
      if (!client) {
        client = await connect(via.target, via.role, { application_name: 'pgtwin progress' });
      }
      if (stopped) return;
      const { rows } = await client.query<{ what: string; tuples: string }>(
        `SELECT CASE WHEN p.datname = current_database()
                     THEN coalesce((SELECT n.nspname || '.' || c.relname FROM pg_class c
                                      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p.relid),
                                   p.relid::text)
                     ELSE 'into ' || p.datname END AS what,
                p.tuples_processed AS tuples
           FROM pg_stat_progress_copy p JOIN pg_stat_activity a ON a.pid = p.pid
          WHERE p.command = 'COPY FROM' AND a.usename = $1 AND p.pid <> pg_backend_pid()
            AND p.tuples_processed IS NOT NULL`,
        [user],
      );
      copying = rows.length > 0;
      for (const row of rows) {
        const count = Number(row.tuples);
        const first = started.get(row.what) ?? { at: Date.now(), rows: count };
        started.set(row.what, first);
        const seconds = (Date.now() - first.at) / 1000;
        const rate = seconds >= 1 ? `, ${formatCount((count - first.rows) / seconds)} rows/s` : '';
        terminal.status(`[pgtwin] copying ${row.what}: ${formatCount(count)} rows${rate}`, row.what);
      }
    } catch {
      // Progress is a courtesy: a server without pg_stat_progress_copy or a refused login shows none.
      stopped = true;
    }
  };
  const schedule = (ms = POLL_MS) => {
    if (stopped) return;
    timer = setTimeout(() => {
      polling = poll().then(() => schedule());
    }, ms);
    timer.unref();
  };
  schedule(FIRST_POLL_MS);

  return {
    active: () => copying,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await polling;
      terminal.endStatus();
      await client?.end().catch(() => undefined);
    },
  };
}
