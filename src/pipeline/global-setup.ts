import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { resolveConfig, type ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { guardDestructive } from '../guard/production-guard.js';
import { currentRun } from '../guard/test-marker.js';
import { readDumpManifest } from '../mirror/dump-manifest.js';
import { pgtwinVersion } from '../mirror/pgtwin-version.js';
import { startServer as startProvidedServer, type StartServerOptions } from '../provider/start-server.js';
import type { StartedServer } from '../provider/started-server.js';
import { withServer } from '../provider/with-server.js';
import {
  fingerprintInputs,
  fingerprintOf,
  type FingerprintSources,
} from '../provision/fingerprint-inputs.js';
import { dropDatabase } from '../provision/database-lifecycle.js';
import { provisionTestDatabase } from '../provision/provision-test-database.js';
import { cloneTemplate, ensureTemplate, type TemplateLease } from '../provision/template-store.js';
import { prepareWorkerDatabases } from '../provision/worker-database.js';
import { createLogger, type Logger } from '../util/logger.js';
import { buildTwin, twinSource, type TwinSource } from './build-twin.js';
import { acquireSetupLock } from './setup-lock.js';
import { readSetupInputs, type SetupInputs } from './setup-inputs.js';
import { readProductionFingerprint } from './read-production-fingerprint.js';
import { runPhase, type PhaseTiming } from './setup-phase.js';
import { targetFields, type TwinHandoff } from './worker-handoff.js';

/** Options of {@link runGlobalSetup}: pgtwin's configuration plus how to run the setup. */
export interface GlobalSetupOptions extends ResolveConfigOptions {
  /** Where phase lines go. @default createLogger() with the configured passwords masked */
  logger?: Logger;
  /** Gives the run its server (configured, embedded or container). @default startServer of the provider layer */
  startServer?: (config: ResolvedConfig, options: StartServerOptions) => Promise<StartedServer>;
  /**
   * How many test workers run at once. With more than one, each worker gets its own copy of the template,
   * `<test database>_w<worker id>`, made here in parallel. @default 1
   */
  workers?: number;
  /** Build the template again although its fingerprint is unchanged. @default the configuration's `rebuild` (`PGTWIN_REBUILD=1`) */
  rebuild?: boolean;
}

/** A prepared test database, from {@link runGlobalSetup}; close it when the run ends. */
export interface TwinSetup extends AsyncDisposable {
  /** The configuration, with `test` and `admin` on the server actually used. */
  readonly config: ResolvedConfig;
  readonly server: StartedServer;
  readonly source: TwinSource;
  /** The test database: a fresh copy of the template. */
  readonly test: DatabaseTarget;
  /**
   * The fingerprinted template (`pgtwin_tpl_<12 hex>`) the test, worker and per-file databases are copied
   * from. Kept on the server after the run, so the next run with the same inputs reuses it.
   */
  readonly template: DatabaseTarget;
  /** The fingerprint of everything the template was built from (sha256, hex). */
  readonly fingerprint: string;
  /** Whether the template was reused (false: this run built it). */
  readonly reused: boolean;
  /** The workers' own databases, worker 1 first; empty with one worker (it uses {@link test}). */
  readonly workers: readonly DatabaseTarget[];
  /** What the build read, and the fingerprint of production's structure (absent for schema scripts). */
  readonly inputs: SetupInputs & { readonly structure: string | undefined };
  /** Every phase run so far, in order. */
  readonly phases: readonly PhaseTiming[];
  /** Plain data for the test workers. */
  handoff(): TwinHandoff;
  /**
   * For watch-mode re-runs: when the seeds, factories, scripts or configuration changed since the last
   * build, moves to the template of the new fingerprint (building it if needed) and copies it again to the
   * test and worker databases; returns whether it did.
   */
  refresh(): Promise<boolean>;
  /**
   * Drops the worker databases, releases the template lease and the setup lock, and stops a server pgtwin
   * started. The test database and the template stay. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * The global setup both runners (and the CLI) share: resolve the configuration, provision the test database
 * on its server under a lock, fingerprint what the twin is built from (production's structure and mirrored
 * rows, or the dump's manifest, or the schema scripts; seeds, factories, configuration, versions), then
 * reuse the template of that fingerprint or build it (clone the structure, sync the mirrored tables, load
 * the seeds), and copy it to the test database and to one database per worker. Each phase logs one line
 * with its duration; a failing one throws a `SetupError` naming it, after closing what was opened.
 *
 * Runs that share a server and a test database name wait for each other (the setup lock, held until
 * {@link TwinSetup.close}): they would share `<test>` and its worker copies. Templates need no such lock:
 * the template store's build lock and lease let runs on other test databases build and reuse them at once.
 *
 * @internal Not exported from the package: the Vitest and Jest presets and `pgtwin setup` call it.
 */
export async function runGlobalSetup(options: GlobalSetupOptions = {}): Promise<TwinSetup> {
  const {
    logger: givenLogger,
    startServer = startProvidedServer,
    workers: workerCount = 1,
    rebuild: rebuildOption,
    ...resolveOptions
  } = options;
  const phases: PhaseTiming[] = [];
  const resolved = await runPhase('config', { logger: givenLogger ?? createLogger(), phases }, async () =>
    resolveConfig(resolveOptions),
  );
  const logger =
    givenLogger ??
    createLogger({
      secrets: [resolved.production.password, resolved.test.password, resolved.admin.password],
      debug: resolved.debug,
    });
  const context = { logger, phases };
  const dumpDir = resolved.source.dump;
  const source = twinSource(resolved);
  const rebuild = rebuildOption ?? resolved.rebuild;

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

    const count = Math.max(1, Math.floor(workerCount));
    const prepare = async (setupInputs: SetupInputs, productionClient: pg.Client | undefined) => {
      const built = await prepareTwin(config, {
        admin,
        production: productionClient,
        dumpDir,
        source,
        context,
        rebuild,
        digest: setupInputs.digest,
      });
      try {
        const workers = await prepareWorkers(config, built.lease.template, count, context);
        return { ...built, workers, inputs: { ...setupInputs, structure: built.structure } };
      } catch (error) {
        await built.lease.release();
        throw error;
      }
    };

    let state: Awaited<ReturnType<typeof prepare>>;
    try {
      state = await prepare(await readSetupInputs(config, dumpDir), production);
    } finally {
      await production?.end();
    }
    closers.push(() => state.lease.release());
    const dropWorkers = async () => {
      for (const worker of state.workers) await dropDatabase(config, admin, worker.database);
    };

    let closing: Promise<void> | undefined;
    const twin: TwinSetup = {
      config,
      server,
      source,
      test: config.test,
      get template() {
        return config.test.withDatabase(state.lease.template);
      },
      get fingerprint() {
        return state.lease.fingerprint;
      },
      get reused() {
        return !state.lease.built;
      },
      get workers() {
        return state.workers;
      },
      get inputs() {
        return state.inputs;
      },
      phases,
      handoff: () => ({
        rootDir: config.rootDir,
        options: handoffOptions(resolveOptions),
        test: targetFields(config.test),
        admin: targetFields(config.admin),
        template: state.lease.template,
        run: currentRun(),
        workers: state.workers.map((worker) => worker.database),
      }),
      async refresh() {
        const next = await readSetupInputs(config, dumpDir);
        if (next.digest === state.inputs.digest) return false;
        logger.info('inputs changed: rebuilding the test database');
        const production =
          source === 'production' ? await connect(config.production, 'production') : undefined;
        try {
          const previous = state.lease;
          state = await prepare(next, production);
          // The new lease is held first, so the template in use is never unleased.
          await previous.release();
        } finally {
          await production?.end();
        }
        return true;
      },
      close() {
        closing ??= (async () => {
          try {
            await dropWorkers();
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

interface PrepareOptions {
  admin: pg.Client;
  production: pg.Client | undefined;
  dumpDir: string | undefined;
  source: TwinSource;
  context: Parameters<typeof runPhase>[1];
  rebuild: boolean;
  /** {@link readSetupInputs}' digest: seeds, factories, scripts, dump manifest and configuration. */
  digest: string;
}

/**
 * The `template` phase: fingerprints the inputs, leases the template of that fingerprint (building it,
 * with the clone, sync and seed phases, when it is not on the server), and copies it to the test database.
 */
async function prepareTwin(
  config: ResolvedConfig,
  options: PrepareOptions,
): Promise<{ lease: TemplateLease; structure: string | undefined }> {
  const { admin, context } = options;
  return runPhase('template', context, async (note) => {
    const { sources, structure } = await readFingerprintSources(config, options);
    const inputs = await fingerprintInputs(config, sources);
    for (const [name, digest] of Object.entries(inputs))
      context.logger.debug(`fingerprint ${name}: ${digest}`);
    const lease = await ensureTemplate(
      config,
      fingerprintOf(inputs),
      (target) =>
        buildTwin(config, target, { production: options.production, source: options.source, context }),
      { rebuild: options.rebuild, logger: context.logger },
    );
    try {
      await cloneTemplate(config, lease.template, config.test.database, { kind: 'test', admin });
      await landsWhereAsked(config, config.test);
    } catch (error) {
      await lease.release();
      throw error;
    }
    if (lease.built) note(`${lease.template} built${options.rebuild ? ' (PGTWIN_REBUILD)' : ''}`);
    else note(`${lease.template} reused (fingerprint unchanged)`, 'lead');
    return { lease, structure };
  });
}

/**
 * What the fingerprint is computed from, read cheaply: production's structure and mirrored tables'
 * checksums, or the dump manifest's, or nothing from a server for schema scripts (their files are hashed).
 */
async function readFingerprintSources(
  config: ResolvedConfig,
  options: PrepareOptions,
): Promise<{ sources: FingerprintSources; structure: string | undefined }> {
  const { admin, production, dumpDir, source, digest } = options;
  const { rows } = await admin.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  const common = { serverVersion: rows[0]!.v, pgtwinVersion: pgtwinVersion(), extra: { setup: digest } };
  if (source === 'dump') {
    const manifest = await readDumpManifest(dumpDir!);
    const data = Object.fromEntries(
      manifest.tables.map((table) => [table.table, { rowCount: table.rowCount, checksum: table.checksum }]),
    );
    const structure = manifest.structure.fingerprint;
    return { sources: { ...common, structure, data }, structure };
  }
  if (source === 'scripts')
    return { sources: { ...common, structure: 'scripts', data: {} }, structure: undefined };
  const { structure, data } = await readProductionFingerprint(config, production!);
  return { sources: { ...common, structure, data }, structure };
}

/** The `workers` phase: with more than one worker, a copy of the template per worker, made in parallel. */
async function prepareWorkers(
  config: ResolvedConfig,
  template: string,
  count: number,
  context: Parameters<typeof runPhase>[1],
): Promise<DatabaseTarget[]> {
  if (count <= 1) return [];
  return runPhase('workers', context, async (note) => {
    const workers = await prepareWorkerDatabases(config, template, count);
    for (const worker of workers) await landsWhereAsked(config, worker.target);
    const names = workers.map((worker) => worker.target.database);
    note(names.length <= 4 ? names.join(', ') : `${names[0]} … ${names.at(-1)}`);
    return workers.map((worker) => worker.target);
  });
}

/**
 * The tests connect by name, maybe through a pooler that maps names elsewhere: checks that a connection to
 * `target` lands in the database just created there, and that it is not production, before any test runs.
 */
async function landsWhereAsked(config: ResolvedConfig, target: DatabaseTarget): Promise<void> {
  await guardDestructive({ config, target, operation: 'run tests in' });
}

function handoffOptions(options: ResolveConfigOptions): ResolveConfigOptions {
  // The workers read their own environment; rootDir travels separately.
  const { env: _env, rootDir: _rootDir, ...rest } = options;
  return rest;
}
