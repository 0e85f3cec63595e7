import { runGlobalSetup } from '../../pipeline/global-setup.js';
import { startServer } from '../../provider/start-server.js';
import { withServer } from '../../provider/with-server.js';
import type { Command } from '../command.js';
import { watchCopyProgress, type CopyProgress } from '../copy-progress.js';
import { EXIT } from '../exit-codes.js';
import { formatDuration } from '../terminal.js';

export const setupCommand: Command = {
  name: 'setup',
  summary: 'Build the test database once: provision, clone, mirror, seed, template',
  args: '',
  description:
    'Runs the global-setup pipeline the test runners run, once: provisions the test database and role on the\n' +
    "twin's server, then reuses the template built from the same inputs or builds it (clones production's\n" +
    'structure, or restores source.dump, or applies schema.scripts; copies the mirrored tables; loads the\n' +
    'seeds), and copies the template to the test database, which stays ready for the application or a test\n' +
    'run. PGTWIN_REBUILD=1 builds the template again. Refused (exit 3) when the test database is production.',
  options: {},
  positionals: { min: 0, max: 0 },
  examples: ['pgtwin setup', 'pgtwin setup --env-file .env.test --json', 'PGTWIN_REBUILD=1 pgtwin setup'],
  async run({ terminal, resolveOptions, config }) {
    await config();
    const logger = terminal.logger();
    const began = performance.now();
    let lastLine = began;
    let progress: CopyProgress | undefined;
    let spinner: NodeJS.Timeout | undefined;

    // Phase lines come when a phase ends; on a terminal, the time since the last one shows meanwhile.
    const lineLogger = {
      ...logger,
      info(message: string) {
        logger.info(message);
        lastLine = performance.now();
      },
    };
    if (terminal.interactive) {
      spinner = setInterval(() => {
        if (!progress?.active())
          terminal.status(`[pgtwin] setup … ${formatDuration(performance.now() - lastLine)}`);
      }, 200);
      spinner.unref();
    }

    try {
      const twin = await runGlobalSetup({
        ...resolveOptions,
        logger: lineLogger,
        startServer: async (config, options) => {
          const server = await startServer(config, options);
          terminal.addSecrets([server.admin.password]);
          // From the admin database, so the watch never holds a session on a database being copied.
          progress = watchCopyProgress(
            { target: withServer(config, server).admin, role: 'admin' },
            config.test.user,
            terminal,
          );
          return server;
        },
      });
      try {
        const ms = Math.round(performance.now() - began);
        const built = `(provider ${twin.server.provider}, built from ${twin.source}, template ${twin.template.database}) in ${formatDuration(ms)}`;
        const kept = twin.server.provider === 'server' || twin.config.embedded.persistent;
        terminal.print(
          kept
            ? `Test database ready: ${twin.test.describe()} ${built}.`
            : `Test database built: ${twin.test.describe()} ${built}. The ${twin.server.provider} server pgtwin started ` +
                `there stops as pgtwin setup exits, so nothing will answer at ${twin.test.host}:${twin.test.port}; ` +
                (twin.server.provider === 'embedded'
                  ? `the database stays in ${twin.config.embedded.dataDir} for the next run. Set embedded.persistent: true to keep the server running, ` +
                    "or provider: 'server' (PGTWIN_PROVIDER=server) to build on your own server."
                  : "the container and its database go with it. Use provider: 'server' to keep the database."),
        );
        return {
          code: EXIT.ok,
          json: {
            provider: twin.server.provider,
            source: twin.source,
            test: twin.test,
            template: twin.template.database,
            fingerprint: twin.fingerprint,
            phases: twin.phases,
            serverStopped: !kept,
            ms,
          },
        };
      } finally {
        // No test ran: the test database is stamped clean as the setup left it, without reading it again.
        await twin.close({ testsRan: false });
      }
    } finally {
      if (spinner) clearInterval(spinner);
      await progress?.stop();
      terminal.endStatus();
    }
  },
};
