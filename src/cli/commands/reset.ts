import { DBOperator } from '../../pipeline/db-operator.js';
import { guardDestructive } from '../../guard/production-guard.js';
import { checkSeedFiles } from '../../seed/load-configured-seeds.js';
import type { Command } from '../command.js';
import { watchCopyProgress } from '../copy-progress.js';
import { EXIT } from '../exit-codes.js';
import { formatDuration } from '../terminal.js';
import { onTwinServer } from '../twin-server.js';

export const resetCommand: Command = {
  name: 'reset',
  summary: 'Return the test database to its known state',
  args: '',
  description:
    "Rebuilds the test database in place: production's structure (or schema.scripts), the mirrored tables'\n" +
    'data and the seeds, and nothing else; schemas a test created are dropped. The database must exist\n' +
    '(pgtwin setup creates it). Refused (exit 3) when the test database is production or carries no pgtwin marker.',
  options: {},
  positionals: { min: 0, max: 0 },
  examples: ['pgtwin reset'],
  async run({ terminal, config }) {
    const began = performance.now();
    return onTwinServer(await checkSeedFiles(await config()), terminal, async (config) => {
      // Checked here too, so not even the progress watch connects to a database the guard refuses.
      await guardDestructive({ config, target: config.test, operation: 'reset' });
      const progress = watchCopyProgress({ target: config.test, role: 'test' }, config.test.user, terminal);
      const operator = new DBOperator({ testMode: 'e2e', config });
      try {
        await operator.resetTestDatabase();
      } finally {
        await operator.close();
        await progress.stop();
      }
      const ms = Math.round(performance.now() - began);
      terminal.print(`Reset ${config.test.describe()} in ${formatDuration(ms)}.`);
      return { code: EXIT.ok, json: { test: config.test, ms } };
    });
  },
};
