import { statSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSyncManager } from '../../mirror/database-sync-manager.js';
import { readDumpManifest, verifyDumpFiles } from '../../mirror/dump-manifest.js';
import { provisionTestDatabase } from '../../provision/provision-test-database.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { formatCount, formatDuration } from '../terminal.js';
import { onTwinServer } from '../twin-server.js';
import { UsageError } from '../usage-error.js';

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'Rebuild the test database from a snapshot written by pgtwin dump',
  args: 'DIR',
  description:
    'Checks every file of the snapshot in DIR against its manifest (a corrupted or truncated file is named\n' +
    'and nothing is changed: exit 1), creates the test database and role if needed, then replaces its\n' +
    "structure and mirrored data with the snapshot's in one transaction. Production is not read.\n" +
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
    const resolved = await config();
    // A bad snapshot is refused before anything is created.
    await verifyDumpFiles(dir, await readDumpManifest(dir));
    return onTwinServer(resolved, terminal, async (config) => {
      await provisionTestDatabase(config, { logger: terminal.logger() });
      const manager = new DatabaseSyncManager({ config });
      try {
        const { tables } = await manager.restoreDump({ dir });
        const rows = tables.reduce((sum, table) => sum + table.rowCount, 0);
        const ms = Math.round(performance.now() - began);
        terminal.print(
          `Restored ${dir} into ${config.test.describe()}: ${tables.length} tables, ${formatCount(rows)} rows in ${formatDuration(ms)}.`,
        );
        return { code: EXIT.ok, json: { dir, test: config.test, tables, ms } };
      } finally {
        await manager.close();
      }
    });
  },
};
