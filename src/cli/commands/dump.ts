import path from 'node:path';
import { DatabaseSyncManager } from '../../mirror/database-sync-manager.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { formatCount, formatDuration } from '../terminal.js';
import { UsageError } from '../usage-error.js';

export const dumpCommand: Command = {
  name: 'dump',
  summary: "Write a portable snapshot of production's structure and mirrored data",
  args: '--out DIR',
  description:
    "Writes production's structure (public and the project schemas) and the mirrored tables' rows to DIR,\n" +
    'with a manifest of sizes and checksums, for places that cannot reach production (CI): commit DIR and\n' +
    'set source.dump, or load it with pgtwin restore. DIR must be empty or hold an earlier dump, which is\n' +
    'replaced. Reads production only.',
  options: {
    out: { type: 'string', short: 'o', value: 'DIR', help: 'directory to write (required)' },
    gzip: { type: 'boolean', help: 'gzip the data files (smaller; plain text diffs better in Git)' },
  },
  positionals: { min: 0, max: 0 },
  examples: ['pgtwin dump --out tests/snapshot', 'pgtwin dump --out tests/snapshot --gzip'],
  async run({ terminal, config, values, io }) {
    if (typeof values.out !== 'string' || values.out === '') {
      throw new UsageError('pgtwin dump needs --out DIR, the directory to write the snapshot to.', 'dump');
    }
    const dir = path.resolve(io.cwd, values.out);
    const began = performance.now();
    const manager = new DatabaseSyncManager({ config: await config() });
    try {
      const manifest = await manager.createDump({ dir, gzip: values.gzip === true });
      const rows = manifest.tables.reduce((sum, table) => sum + table.rowCount, 0);
      const ms = Math.round(performance.now() - began);
      terminal.print(
        `Wrote ${dir}: structure ${manifest.structure.fingerprint.slice(0, 12)}, ${manifest.tables.length} tables, ${formatCount(rows)} rows in ${formatDuration(ms)}.`,
      );
      return {
        code: EXIT.ok,
        json: {
          dir,
          fingerprint: manifest.structure.fingerprint,
          tables: manifest.tables.map((table) => ({
            table: table.table,
            file: table.file,
            rowCount: table.rowCount,
          })),
          ms,
        },
      };
    } finally {
      await manager.close();
    }
  },
};
