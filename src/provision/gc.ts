import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { configFrom, type ResolvedConfig } from '../config/resolve-config.js';
import type { TemplateMarker, TestMarker } from '../guard/test-marker.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { TwinDatabases } from './twin-databases.js';

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
  kind: TestMarker['kind'] | 'unmarked';
  run: string;
  /** Milliseconds since creation (templates: last use). */
  ageMs: number;
  /** Why it was kept; absent for dropped ones. */
  kept?: 'recent' | 'run alive' | 'leased' | 'bad marker';
}

/** What {@link gc} dropped, or with `dryRun` would drop, and what it kept. */
export interface GcResult {
  /** The databases dropped; always empty in a dry run. */
  dropped: GcEntry[];
  /** In a dry run, the databases a real run would drop; otherwise empty. */
  wouldDrop: GcEntry[];
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
 * const { wouldDrop } = await gc(config, { olderThanMs: 60 * 60 * 1000, dryRun: true });
 * wouldDrop.map((entry) => entry.name); // ['pgtwin_tpl_3f9a0c2b7d41', 'app_test_w3']
 * ```
 */
export async function gc(
  configOrOptions?: ResolvedConfig | ResolveConfigOptions,
  options: GcOptions = {},
): Promise<GcResult> {
  const config = await configFrom(configOrOptions);
  const olderThanMs = options.olderThanMs ?? DEFAULT_GC_AGE_MS;
  const dryRun = options.dryRun ?? false;
  const logger = options.logger ?? silentLogger;
  const databases = await TwinDatabases.open(config);
  const result: GcResult = { dropped: [], wouldDrop: [], kept: [], dryRun };
  const candidates = dryRun ? result.wouldDrop : result.dropped;
  try {
    const now = Date.now();
    // Leftovers of crashed runs go whatever their age: nothing can use a database that never got in place.
    const leftovers = dryRun ? await databases.findLeftovers() : await databases.cleanLeftovers(logger);
    for (const name of leftovers) {
      if (options.names && !options.names.test(name)) continue;
      const marker = await databases.marker(name);
      candidates.push({
        name,
        kind: marker?.kind ?? 'unmarked',
        run: marker?.run ?? 'unknown',
        ageMs: 0,
      });
      if (dryRun) logger.info(`would drop ${name}, left by a pgtwin run that did not finish`);
    }
    for (const { name, marker } of await databases.list()) {
      if (options.names && !options.names.test(name)) continue;
      if (marker.kind === 'wip' || marker.kind === 'trash') continue;
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
      if (await databases.runIsAlive(marker.run)) {
        keep('run alive');
        continue;
      }
      const drop = async () => {
        if (!dryRun) await databases.drop(name);
        candidates.push(entry);
        logger.info(
          `${dryRun ? 'would drop' : 'dropped'} ${name} (${marker.kind} of run ${marker.run}, ${describeAge(entry.ageMs)} old)`,
        );
        return true;
      };
      // A template is in use while a run leases it, whoever built it.
      if (marker.kind !== 'template') await drop();
      else if (!(await databases.withUnleasedTemplate(name, drop))) keep('leased');
    }
    return result;
  } finally {
    await databases.close();
  }
}

function describeAge(ms: number): string {
  if (ms >= 86_400_000) return `${Math.round(ms / 86_400_000)} d`;
  if (ms >= 3_600_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.round(ms / 60_000)} min`;
}
