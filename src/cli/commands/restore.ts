import { statSync } from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig } from '../../config/resolve-config.js';
import { connect } from '../../connection/connect.js';
import { PgtwinError, SeedError } from '../../errors.js';
import { DatabaseSyncManager } from '../../mirror/database-sync-manager.js';
import { readDumpManifest, verifyDumpFiles } from '../../mirror/dump-manifest.js';
import { provisionTestDatabase } from '../../provision/provision-test-database.js';
import { checkSeedFiles, loadConfiguredSeeds } from '../../seed/load-configured-seeds.js';
import type { SeedResult } from '../../seed/load-seed-data.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { formatCount, formatDuration, type Terminal } from '../terminal.js';
import { onTwinServer } from '../twin-server.js';
import { UsageError } from '../usage-error.js';

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'Rebuild the test database from a snapshot written by pgtwin dump',
  args: 'DIR',
  description:
    'Checks every file of the snapshot in DIR against its manifest (a corrupted or truncated file is named\n' +
    'and nothing is changed: exit 1), creates the test database and role if needed, then replaces its\n' +
    "structure and mirrored data with the snapshot's in one transaction, then loads the configured seeds\n" +
    '(the structure-only tables hold test data only, which a dump never carries). Production is not read.\n' +
    'Refused (exit 3) when the test database is production.',
  options: {},
  positionals: { min: 1, max: 1 },
  examples: ['pgtwin restore tests/snapshot'],
  async run({ terminal, config, positionals, io }) {
    const dir = path.resolve(io.cwd, positionals[0]!);
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new UsageError(
        `${dir} is not a directory. Give the directory pgtwin dump --out wrote (it holds manifest.json).`,
        'restore',
      );
    }
    const began = performance.now();
    const resolved = await checkSeedFiles(await config());
    // A bad snapshot is refused before anything is created.
    await verifyDumpFiles(dir, await readDumpManifest(dir));
    return onTwinServer(resolved, terminal, async (config) => {
      await provisionTestDatabase(config, { logger: terminal.logger() });
      const manager = new DatabaseSyncManager({ config });
      try {
        const { tables } = await manager.restoreDump({ dir });
        const rows = tables.reduce((sum, table) => sum + table.rowCount, 0);
        // A dump holds no test data: the seeds are loaded again, as setup and reset do.
        const seeds = await reloadSeeds(config, terminal);
        const ms = Math.round(performance.now() - began);
        const seeded = seeds
          ? `; seeds: ${formatCount(seeds.rows)} row${seeds.rows === 1 ? '' : 's'} from ${seeds.files.map((file) => path.relative(config.rootDir, file) || file).join(', ')}`
          : '; no seeds configured';
        terminal.print(
          `Restored ${dir} into ${config.test.describe()}: ${tables.length} tables, ${formatCount(rows)} rows${seeded} in ${formatDuration(ms)}.`,
        );
        return {
          code: EXIT.ok,
          json: {
            dir,
            test: config.test,
            tables,
            seeds: seeds ? { files: seeds.files, rows: seeds.rows } : null,
            ms,
          },
        };
      } finally {
        await manager.close();
      }
    });
  },
};

/**
 * Loads the configured seeds into the restored test database. The restore has committed by then, so a
 * refused seed leaves the restored data without seeds: the error says so and how to load them.
 */
async function reloadSeeds(config: ResolvedConfig, terminal: Terminal): Promise<SeedResult | undefined> {
  const client = await connect(config.test, 'test');
  try {
    return await loadConfiguredSeeds(client, config, { logger: terminal.logger() });
  } catch (error) {
    if (!(error instanceof PgtwinError)) throw error;
    throw new SeedError(
      { file: (error as SeedError).file ?? '', path: (error as SeedError).path ?? '$' },
      `${error.message} The snapshot was restored, but no seeds were loaded: fix the seed and run pgtwin reset (or restore again).`,
      { cause: error },
    );
  } finally {
    await client.end();
  }
}
