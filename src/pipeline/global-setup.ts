import { createHash } from 'node:crypto';
import path from 'node:path';
import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { resolveConfig, type ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { guardDestructive } from '../guard/production-guard.js';
import { newMarker, readMarker, writeMarker } from '../guard/test-marker.js';
import { restoreDump } from '../mirror/restore-dump.js';
import { syncTables } from '../mirror/sync-tables.js';
import { startServer as startProvidedServer, type StartServerOptions } from '../provider/start-server.js';
import type { StartedServer } from '../provider/started-server.js';
import { withServer } from '../provider/with-server.js';
import { provisionTestDatabase } from '../provision/provision-test-database.js';
import { loadConfiguredSeeds } from '../seed/load-configured-seeds.js';
import { applySqlScripts } from '../structure/apply-sql-scripts.js';
import { cloneStructure } from '../structure/clone-structure.js';
import { resolveSchemas, selectionFromConfig } from '../structure/schema-selection.js';
import { structureFingerprint } from '../structure/structure-fingerprint.js';
import { createLogger, type Logger } from '../util/logger.js';
import { acquireSetupLock } from './setup-lock.js';
import { readSetupInputs, type SetupInputs } from './setup-inputs.js';
import { runPhase, type PhaseTiming } from './setup-phase.js';
import { targetFields, type TwinHandoff } from './worker-handoff.js';

/** Options of {@link runGlobalSetup}: pgtwin's configuration plus how to run the setup. */
export interface GlobalSetupOptions extends ResolveConfigOptions {
  /** Where phase lines go. @default createLogger() with the configured passwords masked */
  logger?: Logger;
  /** Gives the run its server (configured, embedded or container). @default startServer of the provider layer */
  startServer?: (config: ResolvedConfig, options: StartServerOptions) => Promise<StartedServer>;
}

/** What the structure and data were built from. */
export type TwinSource = 'production' | 'dump' | 'scripts';

/** A prepared test database, from {@link runGlobalSetup}; close it when the run ends. */
export interface TwinSetup extends AsyncDisposable {
  /** The configuration, with `test` and `admin` on the server actually used. */
  readonly config: ResolvedConfig;
  readonly server: StartedServer;
  readonly source: TwinSource;
  /** The test database the workers use. */
  readonly test: DatabaseTarget;
  /** A copy of the built test database that per-file copies are made from; never connected to by tests. */
  readonly template: DatabaseTarget;
  /** What the build read, and the fingerprint of the structure built (absent for schema scripts). */
  readonly inputs: SetupInputs & { readonly structure: string | undefined };
  /** Every phase run so far, in order. */
  readonly phases: readonly PhaseTiming[];
  /** Plain data for the test workers. */
  handoff(): TwinHandoff;
  /** Rebuilds when the inputs changed since the last build (watch mode re-runs); returns whether it did. */
  refresh(): Promise<boolean>;
  /** Drops the template, releases the setup lock and stops a server pgtwin started. Idempotent. */
  close(): Promise<void>;
}

/**
 * The global setup both runners (and the CLI) share: resolve the configuration, provision the test database
 * on its server under a lock, clone the structure (from production, a dump or the schema scripts), sync the
 * mirrored tables, load the seeds and snapshot the result as a template. Each phase logs one line with its
 * duration; a failing one throws a `SetupError` naming it, after closing what was opened.
 *
 * @example
 * ```ts
 * await using twin = await runGlobalSetup({ rootDir: process.cwd() });
 * process.env.TEST_DATABASE_URL = twin.test.url({ withPassword: true });
 * ```
 */
export async function runGlobalSetup(options: GlobalSetupOptions = {}): Promise<TwinSetup> {
  const { logger: givenLogger, startServer = startProvidedServer, ...resolveOptions } = options;
  const phases: PhaseTiming[] = [];
  const resolved = await runPhase('config', { logger: givenLogger ?? createLogger(), phases }, async () =>
    resolveConfig(resolveOptions),
  );
  const logger =
    givenLogger ??
    createLogger({
      secrets: [resolved.production.password, resolved.test.password, resolved.admin.password],
    });
  const context = { logger, phases };
  const dumpDir = resolved.source.dump;
  const source: TwinSource = dumpDir ? 'dump' : resolved.schema.scripts ? 'scripts' : 'production';

  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  };

  try {
    const { config, admin, production, server } = await runPhase('provision', context, async (note) => {
      const server = await startServer(resolved, { logger });
      closers.push(() => server.stop());
      const config = withServer(resolved, server);
      const admin = await connect(config.admin, 'admin');
      closers.push(() => admin.end());
      // A dropped admin connection releases the lock; the run notices at its next statement.
      admin.on('error', () => undefined);
      await acquireSetupLock(admin, config.test.database, logger);
      const provisioned = await provisionTestDatabase(config, { logger });
      // Reach production now, so an unreachable one fails here rather than after the test database changed.
      const production = source === 'production' ? await connect(config.production, 'production') : undefined;
      note(
        `${server.provider} ${config.test.describe()}` +
          (provisioned.changes.length > 0 ? `; ${provisioned.changes.join('; ')}` : ''),
      );
      return { config, admin, production, server };
    });

    const template = config.test.withDatabase(templateName(config.test.database));
    let inputs = { ...(await readSetupInputs(config, dumpDir)), structure: undefined as string | undefined };
    inputs.structure = await build(config, { admin, production, dumpDir, source, context });
    await production?.end();

    let closing: Promise<void> | undefined;
    const twin: TwinSetup = {
      config,
      server,
      source,
      test: config.test,
      template,
      get inputs() {
        return inputs;
      },
      phases,
      handoff: () => ({
        rootDir: config.rootDir,
        options: handoffOptions(resolveOptions),
        test: targetFields(config.test),
        admin: targetFields(config.admin),
        template: template.database,
      }),
      async refresh() {
        const next = await readSetupInputs(config, dumpDir);
        if (next.digest === inputs.digest) return false;
        logger.info('inputs changed: rebuilding the test database');
        const production =
          source === 'production' ? await connect(config.production, 'production') : undefined;
        try {
          inputs = {
            ...next,
            structure: await build(config, { admin, production, dumpDir, source, context }),
          };
        } finally {
          await production?.end();
        }
        return true;
      },
      close() {
        closing ??= (async () => {
          try {
            await dropTemplate(config, admin, template);
          } finally {
            await closeAll();
          }
        })();
        return closing;
      },
      [Symbol.asyncDispose]: () => twin.close(),
    };
    return twin;
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function build(
  config: ResolvedConfig,
  options: {
    admin: pg.Client;
    production: pg.Client | undefined;
    dumpDir: string | undefined;
    source: TwinSource;
    context: Parameters<typeof runPhase>[1];
  },
): Promise<string | undefined> {
  const { admin, production, dumpDir, source, context } = options;
  const selection = selectionFromConfig(config);
  let structure: string | undefined;

  const test = await runPhase('clone', context, async (note) => {
    await guardDestructive({ config, target: config.test, operation: 'rebuild', serverClient: admin });
    const test = await connect(config.test, 'test');
    try {
      if (source === 'dump') {
        const restored = await restoreDump({ dir: dumpDir!, target: test, policy: config, replace: true });
        structure = restored.manifest.structure.fingerprint;
        const rows = restored.tables.reduce((sum, table) => sum + table.rowCount, 0);
        note(`from dump ${dumpDir}: ${restored.tables.length} tables, ${rows} rows`);
      } else if (source === 'scripts') {
        const existing = await resolveSchemas(test, selection);
        const files = await applySqlScripts(test, config.schema.scripts!, {
          replaceSchemas: [...new Set(['public', ...existing])],
        });
        note(`${files.length} scripts from ${config.schema.scripts}`);
      } else {
        // Schemas a previous run's seeds created (test-only project schemas) go too: nothing survives a rebuild.
        const kept = new Set(await resolveSchemas(production!, selection));
        for (const schema of await resolveSchemas(test, selection)) {
          if (!kept.has(schema)) await test.query(`DROP SCHEMA ${test.escapeIdentifier(schema)} CASCADE`);
        }
        const snapshot = await cloneStructure(production!, test, { selection, replace: true });
        structure = await structureFingerprint(snapshot);
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

  await runPhase('template', context, async (note) => {
    const template = config.test.withDatabase(templateName(config.test.database));
    await dropTemplate(config, admin, template);
    await guardDestructive({
      config,
      target: template,
      operation: 'create',
      serverClient: admin,
      creating: true,
    });
    // CREATE DATABASE ... TEMPLATE needs the source free of other sessions: the workers have not started yet.
    await admin.query(
      `CREATE DATABASE ${admin.escapeIdentifier(template.database)} TEMPLATE ${admin.escapeIdentifier(config.test.database)} OWNER ${admin.escapeIdentifier(config.test.user)}`,
    );
    await writeMarker(admin, template.database, newMarker('template'));
    note(template.database);
  });
  return structure;
}

async function dropTemplate(
  config: ResolvedConfig,
  admin: pg.Client,
  template: DatabaseTarget,
): Promise<void> {
  if ((await readMarker(admin, template.database)) === undefined) return;
  await guardDestructive({ config, target: template, operation: 'drop', serverClient: admin });
  await admin.query(`DROP DATABASE ${admin.escapeIdentifier(template.database)} WITH (FORCE)`);
}

/** `<test>_template`, shortened with a hash when that would pass PostgreSQL's 63-byte name limit. */
export function templateName(database: string): string {
  const name = `${database}_template`;
  if (Buffer.byteLength(name) <= 63) return name;
  const hash = createHash('sha256').update(database).digest('hex').slice(0, 8);
  return `${database.slice(0, 40)}_${hash}_template`;
}

function handoffOptions(options: ResolveConfigOptions): ResolveConfigOptions {
  // The workers read their own environment; rootDir travels separately.
  const { env: _env, rootDir: _rootDir, ...rest } = options;
  return rest;
}
