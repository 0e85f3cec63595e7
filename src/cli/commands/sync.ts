import { DatabaseSyncManager } from '../../mirror/database-sync-manager.js';
import { guardDestructive } from '../../guard/production-guard.js';
import { enforceMirrorPolicy } from '../../mirror/mirror-policy.js';
import type { Command } from '../command.js';
import { watchCopyProgress } from '../copy-progress.js';
import { EXIT } from '../exit-codes.js';
import { formatCount, formatDuration } from '../terminal.js';
import { onTwinServer } from '../twin-server.js';

export const syncCommand: Command = {
  name: 'sync',
  summary: 'Refresh mirrored tables from production',
  args: '[tables...]',
  description:
    "Copies production's rows into the test database's copies of the mirrored tables (mirror.full), all of\n" +
    'them or the ones named (schema.table; a bare name means public), in one transaction. Only tables in\n' +
    'mirror.full may be named (exit 2 otherwise). Refused (exit 3) when the test database is production.',
  options: {},
  positionals: { min: 0, max: Infinity },
  examples: ['pgtwin sync', 'pgtwin sync public.prompts'],
  async run({ terminal, config, positionals }) {
    const began = performance.now();
    const resolved = await config();
    // Named tables are checked before any server is started or reached.
    for (const table of positionals)
      enforceMirrorPolicy(resolved, table.includes('.') ? table : `public.${table}`, { cli: true });
    return onTwinServer(resolved, terminal, async (config) => {
      // Checked here too, so not even the progress watch connects to a database the guard refuses.
      await guardDestructive({ config, target: config.test, operation: 'sync tables into' });
      const progress = watchCopyProgress({ target: config.test, role: 'test' }, config.test.user, terminal);
      const manager = new DatabaseSyncManager({ config });
      let tables;
      try {
        ({ tables } = await manager.syncTables({
          tables: positionals.length > 0 ? positionals : undefined,
        }));
      } finally {
        await manager.close();
        await progress.stop();
      }
      const ms = Math.round(performance.now() - began);
      const width = Math.max(0, ...tables.map((table) => table.table.length));
      for (const table of tables)
        terminal.print(`${table.table.padEnd(width)}  ${formatCount(table.rowCount)} rows`);
      const rows = tables.reduce((sum, table) => sum + table.rowCount, 0);
      terminal.print(
        `Synced ${tables.length} table${tables.length === 1 ? '' : 's'} (${formatCount(rows)} rows) into ${config.test.describe()} in ${formatDuration(ms)}.`,
      );
      return { code: EXIT.ok, json: { test: config.test, tables, ms } };
    });
  },
};
