import path from 'node:path';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { guardDestructive } from '../guard/production-guard.js';
import { countContents, type ContentCounts } from '../isolation/leak-detector.js';
import { loadConfiguredSeeds } from '../seed/load-configured-seeds.js';
import type { Logger } from '../util/logger.js';
import { runPhase, type PhaseTiming } from './setup-phase.js';
import type { TwinSourceReader } from './twin-source.js';

/** Options of {@link buildTwin}. */
export interface BuildTwinOptions {
  /** Where the structure and mirrored rows come from ({@link openTwinSource}). */
  source: TwinSourceReader;
  /** Where the clone, sync and seed phases are logged and timed. */
  context: { logger: Logger; phases: PhaseTiming[] };
  /**
   * Count what the built database holds, on the session that built it (its pages still in shared buffers):
   * for a template, it stands for counting each fresh copy. @default false
   */
  count?: boolean;
}

/**
 * Builds the twin into `target`, a new empty database owned by the test user: the structure (cloned from
 * production, restored from the dump, or applied from the schema scripts), the mirrored tables' rows, then
 * the seeds. The global setup builds templates with it and `reset` the fresh state it swaps in. Returns the
 * counts when `options.count` asks for them.
 */
export async function buildTwin(
  config: ResolvedConfig,
  target: DatabaseTarget,
  options: BuildTwinOptions,
): Promise<ContentCounts | undefined> {
  const { source, context } = options;
  const test = await runPhase('clone', context, async (note) => {
    const test = await connect(target, 'test');
    try {
      await guardDestructive({ config, client: test, database: target.database, operation: 'build' });
      note(await source.buildStructure(test));
      return test;
    } catch (error) {
      await test.end();
      throw error;
    }
  });

  try {
    const { syncData } = source;
    if (syncData) {
      await runPhase('sync', context, async (note) =>
        note(await syncData.call(source, test, { target, logger: context.logger })),
      );
    }
    await runPhase('seed', context, async (note) => {
      const seeded = await loadConfiguredSeeds(test, config, { logger: context.logger });
      if (!seeded) note('no seed file');
      else {
        for (const [table, rows] of Object.entries(seeded.tables))
          context.logger.debug(`seed ${table}: ${rows} rows`);
        note(
          `${seeded.rows} rows from ${seeded.files.map((file) => path.relative(config.rootDir, file)).join(', ')}`,
        );
      }
    });
    return options.count ? await countContents(test) : undefined;
  } finally {
    await test.end();
  }
}
