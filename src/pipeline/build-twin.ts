import path from 'node:path';
import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { guardDestructive } from '../guard/production-guard.js';
import { restoreDump } from '../mirror/restore-dump.js';
import { syncTables } from '../mirror/sync-tables.js';
import { loadConfiguredSeeds } from '../seed/load-configured-seeds.js';
import { applySqlScripts } from '../structure/apply-sql-scripts.js';
import { cloneStructure } from '../structure/clone-structure.js';
import { resolveSchemas, selectionFromConfig } from '../structure/schema-selection.js';
import { runPhase, type PhaseTiming } from './setup-phase.js';
import type { Logger } from '../util/logger.js';

/** What the structure and data were built from. */
export type TwinSource = 'production' | 'dump' | 'scripts';

/** The source the configuration asks for: a dump directory, else schema scripts, else production. */
export function twinSource(config: ResolvedConfig): TwinSource {
  return config.source.dump ? 'dump' : config.schema.scripts ? 'scripts' : 'production';
}

/** Options of {@link buildTwin}. */
export interface BuildTwinOptions {
  /** A read-only production session; needed when the source is production. */
  production: pg.Client | undefined;
  source: TwinSource;
  /** Where the clone, sync and seed phases are logged and timed. */
  context: { logger: Logger; phases: PhaseTiming[] };
}

/**
 * Builds the twin into `target`, a new empty database owned by the test user: the structure (cloned from
 * production, restored from the dump, or applied from the schema scripts), the mirrored tables' rows, then
 * the seeds. The global setup builds templates with it and `reset` the fresh state it swaps in.
 */
export async function buildTwin(
  config: ResolvedConfig,
  target: DatabaseTarget,
  options: BuildTwinOptions,
): Promise<void> {
  const { production, source, context } = options;
  const selection = selectionFromConfig(config);

  const test = await runPhase('clone', context, async (note) => {
    const test = await connect(target, 'test');
    try {
      await guardDestructive({ config, client: test, database: target.database, operation: 'build' });
      if (source === 'dump') {
        const dir = config.source.dump!;
        const restored = await restoreDump({ dir, target: test, policy: config, replace: true });
        const rows = restored.tables.reduce((sum, table) => sum + table.rowCount, 0);
        note(`from dump ${dir}: ${restored.tables.length} tables, ${rows} rows`);
      } else if (source === 'scripts') {
        const existing = await resolveSchemas(test, selection);
        const files = await applySqlScripts(test, config.schema.scripts!, {
          replaceSchemas: [...new Set(['public', ...existing])],
        });
        note(`${files.length} scripts from ${config.schema.scripts}`);
      } else {
        const snapshot = await cloneStructure(production!, test, { selection, replace: true });
        note(`${snapshot.objects.length} objects`);
      }
      return test;
    } catch (error) {
      await test.end();
      throw error;
    }
  });

  try {
    if (source === 'production') {
      await runPhase('sync', context, async (note) => {
        const { tables } = await syncTables(production!, test, { policy: config });
        for (const table of tables) context.logger.debug(`sync ${table.table}: ${table.rowCount} rows`);
        note(`${tables.length} tables, ${tables.reduce((sum, table) => sum + table.rowCount, 0)} rows`);
      });
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
  } finally {
    await test.end();
  }
}
