import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import type { TestMarker } from '../guard/test-marker.js';
import { silentLogger, type Logger } from '../util/logger.js';
import {
  BUILD_PREFIX,
  buildLock,
  fingerprintOfName,
  leaseLock,
  runIsAlive,
  tryLock,
  unlock,
  type LockName,
} from './template-locks.js';
import { dropDatabase, listStamped, type TemplateMarker } from './template-store.js';

/** Databases younger than this are kept by {@link gc}: one day. */
export const DEFAULT_GC_AGE_MS = 24 * 60 * 60 * 1000;

/** Options of {@link gc}. */
export interface GcOptions {
  /**
   * Only databases created (templates: last used) longer ago than this are dropped.
   * @default DEFAULT_GC_AGE_MS
   */
  olderThanMs?: number;
  /** Only look at databases whose name matches, e.g. `/^myapp_/`. @default every stamped database */
  names?: RegExp;
  /** Report what would be dropped, drop nothing. @default false */
  dryRun?: boolean;
  logger?: Logger;
}

/** One database {@link gc} looked at. */
export interface GcEntry {
  name: string;
  kind: TestMarker['kind'];
  run: string;
  /** Milliseconds since creation (templates: last use). */
  ageMs: number;
  /** Why it was kept; absent for dropped ones. */
  kept?: 'recent' | 'run alive' | 'leased' | 'building' | 'bad marker';
}

/** What {@link gc} dropped (or, with `dryRun`, would drop) and what it kept. */
export interface GcResult {
  dropped: GcEntry[];
  kept: GcEntry[];
  dryRun: boolean;
}

/**
 * Drops the databases pgtwin left on a shared server: every database stamped with pgtwin's marker whose run
 * is gone (it holds no run lock, and, on this host, its process has exited; other hosts' runs are judged by
 * age alone) and that is older than `olderThanMs`. Templates leased by a run and builds in progress are
 * kept. Databases without a marker are never touched, and every drop goes through the production guard.
 *
 * @example
 * ```ts
 * const { dropped } = await gc(config, { olderThanMs: 60 * 60 * 1000, dryRun: true });
 * dropped.map((entry) => entry.name); // ['pgtwin_tpl_3f9a0c2b7d41', 'app_test_w3']
 * ```
 */
export async function gc(config: ResolvedConfig, options: GcOptions = {}): Promise<GcResult> {
  const olderThanMs = options.olderThanMs ?? DEFAULT_GC_AGE_MS;
  const dryRun = options.dryRun ?? false;
  const logger = options.logger ?? silentLogger;
  const admin = await connect(config.admin, 'admin');
  const result: GcResult = { dropped: [], kept: [], dryRun };
  try {
    const now = Date.now();
    for (const { name, marker } of await listStamped(admin)) {
      if (options.names && !options.names.test(name)) continue;
      const since = Date.parse((marker as TemplateMarker).used ?? marker.created);
      const entry: GcEntry = { name, kind: marker.kind, run: String(marker.run), ageMs: now - since };
      const keep = (reason: NonNullable<GcEntry['kept']>) => result.kept.push({ ...entry, kept: reason });
      if (Number.isNaN(since) || typeof marker.run !== 'string') {
        keep('bad marker');
        continue;
      }
      if (entry.ageMs < olderThanMs) {
        keep('recent');
        continue;
      }
      if (await runIsAlive(admin, marker.run)) {
        keep('run alive');
        continue;
      }
      const guardLock = lockFor(name, marker);
      if (guardLock && !(await tryLock(admin, guardLock, 'exclusive'))) {
        keep(marker.kind === 'template' ? 'leased' : 'building');
        continue;
      }
      try {
        if (!dryRun) await dropDatabase(config, admin, name);
        result.dropped.push(entry);
        logger.info(
          `${dryRun ? 'would drop' : 'dropped'} ${name} (${marker.kind} of run ${marker.run}, ${describeAge(entry.ageMs)} old)`,
        );
      } finally {
        if (guardLock) await unlock(admin, guardLock, 'exclusive');
      }
    }
    return result;
  } finally {
    await admin.end();
  }
}

/** The lock a run holds while it needs the database: a template's lease, a build's build lock. */
function lockFor(name: string, marker: TestMarker): LockName | undefined {
  if (marker.kind === 'template') return leaseLock(name);
  const fingerprint = fingerprintOfName(name);
  if (name.startsWith(BUILD_PREFIX) && fingerprint !== undefined) return buildLock(fingerprint);
  return undefined;
}

function describeAge(ms: number): string {
  if (ms >= 86_400_000) return `${Math.round(ms / 86_400_000)} d`;
  if (ms >= 3_600_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.round(ms / 60_000)} min`;
}
