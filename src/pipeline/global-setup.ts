import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { resolveConfig, type ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { endSoon } from '../connection/end-soon.js';
import { guardDestructive } from '../guard/production-guard.js';
import { currentRun, newMarker, type TestMarker } from '../guard/test-marker.js';
import { pgtwinVersion } from '../mirror/pgtwin-version.js';
import { startServer as startProvidedServer, type StartServerOptions } from '../provider/start-server.js';
import type { StartedServer } from '../provider/started-server.js';
import { withServer } from '../provider/with-server.js';
import { serverVersion } from '../connection/server-version.js';
import { provisionWithSession } from '../provision/provision-test-database.js';
import {
  fingerprintInputs,
  fingerprintOf,
  readLocalInputs,
  type LocalInputs,
} from '../provision/twin-fingerprint.js';
import { TwinDatabases, type TemplateLease } from '../provision/twin-databases.js';
import { workerTarget } from '../provision/worker-database.js';
import type { ContentCounts, LeakBaseline } from '../isolation/leak-detector.js';
import { createLogger, type Logger } from '../util/logger.js';
import { checkSeedFiles } from '../seed/load-configured-seeds.js';
import { buildTwin } from './build-twin.js';
import { dropRunCopies } from './ready-copies.js';
import { changedSinceClean, CleanRunWatch, markRunStarted, runStartedMarker } from './clean-run-watch.js';
import { acquireSetupLock } from './setup-lock.js';
import { runPhase, type PhaseTiming } from './setup-phase.js';
import { openTwinSource, type TwinSource, type TwinSourceReader } from './twin-source.js';
import { readServerIdentity } from '../guard/server-identity.js';
import { recordProductionQuiet, type ProductionProofs } from './read-production-fingerprint.js';
import { targetFields, type TwinHandoff } from './worker-handoff.js';

export type { TwinSource } from './twin-source.js';
/** Options of {@link runGlobalSetup}: pgtwin's configuration plus how to run the setup. */
export interface GlobalSetupOptions extends ResolveConfigOptions {
  /** Where phase lines go. @default createLogger() with the configured passwords masked */
  logger?: Logger;
  /** Gives the run its server (configured, embedded or container). @default startServer of the provider layer */
  startServer?: (config: ResolvedConfig, options: StartServerOptions) => Promise<StartedServer>;
  /**
   * How many test workers run at once. With more than one, each worker gets its own copy of the template,
   * `<test database>_w<worker id>`, made here in parallel, or kept from the previous run when it left it
   * clean, as the test database is. @default 1
   */
  workers?: number;
  /** Build the template again although its fingerprint is unchanged. @default the configuration's `rebuild` (`PGTWIN_REBUILD=1`) */
  rebuild?: boolean;
}

/** What the template step produced; replaced as a whole by a watch-mode refresh. */
interface PreparedTwin {
  readonly lease: TemplateLease;
  /** Whether the test database was copied from the template (false: the previous run left it clean). */
  readonly copied: boolean;
  readonly workers: readonly PreparedWorker[];
  readonly inputs: LocalInputs & { readonly structure: string | undefined };
  readonly watch: CleanRunWatch;
  /** Where and when this run proved production as its baseline says (production sources only). */
  readonly proofs: ProductionProofs | undefined;
}

/** A worker's own database, equal to the template for this run, and its watch. */
interface PreparedWorker {
  readonly target: DatabaseTarget;
  readonly watch: CleanRunWatch;
  /** Whether it was copied from the template in this run (false: the previous run left it clean). */
  readonly copied: boolean;
}

/** What one run holds for its whole life, shared by its first setup and its refreshes. */
interface RunContext {
  readonly config: ResolvedConfig;
  readonly admin: pg.Client;
  /** pgtwin's databases, on {@link admin}. */
  readonly databases: TwinDatabases;
  readonly context: { logger: Logger; phases: PhaseTiming[] };
  readonly rebuild: boolean;
  readonly workerCount: number;
}

/**
 * A prepared test database, from {@link runGlobalSetup}; close it when the run ends.
 *
 * @example
 * ```ts
 * await using twin = await runGlobalSetup({ rootDir: process.cwd() });
 * console.log(twin.template.database, twin.reused ? 'reused' : 'built');
 * ```
 */
export class TwinSetup implements AsyncDisposable {
  /** The configuration, with `test` and `admin` on the server actually used. */
  readonly config: ResolvedConfig;
  readonly server: StartedServer;
  readonly source: TwinSource;
  /** The test database: equal to the template (copied from it, or left so by the previous run). */
  readonly test: DatabaseTarget;
  /** Every phase run so far, in order. */
  readonly phases: readonly PhaseTiming[];
  private prepared: PreparedTwin;
  private closing: Promise<void> | undefined;

  /** @internal Made by {@link runGlobalSetup}. */
  constructor(
    private readonly run: RunContext,
    fields: { server: StartedServer; source: TwinSource; prepared: PreparedTwin },
    private readonly resolveOptions: ResolveConfigOptions,
    private readonly held: HeldResources,
  ) {
    this.config = run.config;
    this.server = fields.server;
    this.source = fields.source;
    this.test = run.config.test;
    this.phases = run.context.phases;
    this.prepared = fields.prepared;
  }

  /**
   * The fingerprinted template (`pgtwin_tpl_<12 hex>`) the test, worker and per-file databases are copied
   * from. Kept on the server after the run, so the next run with the same inputs reuses it.
   */
  get template(): DatabaseTarget {
    return this.config.test.withDatabase(this.prepared.lease.template);
  }

  /** The fingerprint of everything the template was built from (sha256, hex). */
  get fingerprint(): string {
    return this.prepared.lease.fingerprint;
  }

  /** Whether the template was reused (false: this run built it). */
  get reused(): boolean {
    return !this.prepared.lease.built;
  }

  /**
   * Whether the test database was copied from the template in this run; false when the previous run left it
   * provably equal to the template (same fingerprint, nothing committed outside the tests) and it was kept.
   */
  get copied(): boolean {
    return this.prepared.copied;
  }

  /** The workers' own databases, worker 1 first; empty with one worker (it uses {@link test}). */
  get workers(): readonly DatabaseTarget[] {
    return this.prepared.workers.map((worker) => worker.target);
  }

  /** The local inputs the fingerprint was computed from, and the fingerprint of production's structure (absent for schema scripts). */
  get inputs(): LocalInputs & { readonly structure: string | undefined } {
    return this.prepared.inputs;
  }

  /** Plain data for the test workers. */
  handoff(): TwinHandoff {
    const { config } = this;
    return {
      rootDir: config.rootDir,
      options: handoffOptions(this.resolveOptions),
      test: targetFields(config.test),
      admin: targetFields(config.admin),
      isolation: { maxConnections: config.isolation.maxConnections },
      template: this.prepared.lease.template,
      run: currentRun(),
      workers: this.prepared.workers.map((worker) => worker.target.database),
    };
  }

  /**
   * For watch-mode re-runs: when the local inputs (seeds, factories and what they import, scripts, dump
   * manifest, configuration) changed since the last build, moves to the template of the new fingerprint
   * (building it if needed) and copies it again to the test and worker databases; returns whether it did.
   * Production is not read unless they changed.
   */
  async refresh(): Promise<boolean> {
    const local = await readLocalInputs(this.config);
    if (local.digest === this.prepared.inputs.digest) return false;
    this.run.context.logger.info('inputs changed: rebuilding the test database');
    const previous = this.prepared;
    const opened = startReading(await openTwinSource(this.config), { logger: this.run.context.logger });
    try {
      // No warm start: the local inputs are part of the fingerprint, so the previous template is stale.
      this.prepared = await prepareTwin(this.run, opened, local, { previous: undefined, session: undefined });
    } finally {
      await opened.source.close();
    }
    // The new lease is held first, so the template in use is never unleased.
    await previous.lease.release();
    return true;
  }

  /**
   * Stamps the test database and each worker's clean when this run committed nothing outside its tests (the
   * next run then uses them without copying), drops the worker databases it did not leave clean and the
   * copies left for opted-out tests, releases the template lease and the setup lock, and stops a server
   * pgtwin started. The test database, the clean worker databases and the template stay. Idempotent.
   * `testsRan: false` (`pgtwin setup`): no test ran, so the databases are stamped as the setup left them, not
   * read again.
   */
  close(options: { testsRan?: boolean } = {}): Promise<void> {
    this.closing ??= (async () => {
      try {
        const { databases, context } = this.run;
        // Opt-outs are recorded on the test database's marker, whichever worker's test file opted out.
        const optedOut = (await databases.marker(this.test.database))?.optedOut === true;
        // Drops first: they take transaction ids, which must come before the clean states' quiet points.
        await dropRunCopies(databases, currentRun());
        const watches = this.watches();
        const reasons = await CleanRunWatch.finishAll(watches, databases, context.logger, {
          ...options,
          optedOut,
        }).catch((error: Error) => watches.map(() => `checking it failed: ${error.message}`));
        for (const [i, watch] of watches.entries()) {
          const reason = reasons[i];
          if (reason === undefined)
            context.logger.debug(
              `${watch.database} left equal to its template: the next run uses it without copying`,
            );
          else if (i === 0)
            context.logger.debug(`${watch.database} will be copied again by the next run: ${reason}`);
          else {
            // A worker's: the next run would copy it again anyway; until then it would only take disk.
            context.logger.debug(`${watch.database} dropped: ${reason}`);
            await databases.drop(watch.database);
          }
        }
        // After the run's last marker write, so that the quiet points list it.
        if (this.prepared.proofs) await this.keepProductionQuiet(this.prepared.proofs);
      } finally {
        await this.held.release(this.prepared.lease.release());
      }
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** See `recordProductionQuiet`; best effort, as the baseline is only a shortcut. */
  private async keepProductionQuiet(proofs: ProductionProofs): Promise<void> {
    const { databases } = this.run;
    const session = await databases.admin();
    const server = await readServerIdentity(session).catch(() => undefined);
    if (!server) return;
    await recordProductionQuiet(proofs, {
      ...server,
      session,
      ownWritesSince: (xmax) => [
        ...databases.markerWritesSince(xmax),
        ...this.watches().flatMap((watch) => watch.sequenceWritesSince(xmax)),
      ],
    }).catch(() => undefined);
  }

  /** The test database's watch, then the workers'. */
  private watches(): CleanRunWatch[] {
    return [this.prepared.watch, ...this.prepared.workers.map((worker) => worker.watch)];
  }
}

/**
 * The global setup both runners (and the CLI) share: resolve the configuration, provision the test database
 * on its server under a lock, fingerprint what the twin is built from (production's structure and mirrored
 * rows, or the dump's manifest, or the schema scripts; seeds, factories, configuration, versions; read from
 * the start, while the server starts and the test database is provisioned), then reuse the template of that
 * fingerprint or build it (clone the structure, sync the mirrored tables, load the seeds; a certain build
 * starts while the fingerprint is read), and make the test database equal to it: kept as it is when the
 * previous run left it clean for the same fingerprint, else copied (the previous template's copy starts
 * while the fingerprint is read, and is discarded if it changed). Then one database per worker. Each phase logs one line with its duration; a
 * failing one throws a `SetupError` naming it, after closing what was opened.
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
    checkSeedFiles(await resolveConfig(resolveOptions)),
  );
  const logger =
    givenLogger ??
    createLogger({
      secrets: [resolved.production.password, resolved.test.password, resolved.admin.password],
      debug: resolved.debug,
    });
  for (const warning of resolved.warnings) logger.warn(warning);
  const context = { logger, phases };
  const rebuild = rebuildOption ?? resolved.rebuild;

  const held = new HeldResources();

  // Both halves of the fingerprint are read while the server starts and the test database is provisioned:
  // the local inputs need no server, and the source (production) is not the test server.
  const local = readLocalInputs(resolved);
  local.catch(() => undefined);
  const opening = openTwinSource(resolved).then((source) => startReading(source, { fresh: rebuild, logger }));
  opening.catch(() => undefined);
  // The test role's session on the test database, from provisioning to the template step's last check.
  let session: pg.Client | undefined;
  let previous: Promise<PreviousRun | undefined> | undefined;
  try {
    const { config, admin, server, opened, databases } = await runPhase(
      'provision',
      context,
      async (note) => {
        const server = await startServer(resolved, { logger });
        held.server = server;
        const config = withServer(resolved, server);
        const admin = await connect(config.admin, 'admin');
        held.sessions.push(admin);
        await acquireSetupLock(admin, config.test.database, logger);
        // Awaited first, so an unreachable production fails here rather than after the test database changed.
        const opened = await opening;
        const databases = await TwinDatabases.open(config, admin);
        previous = rebuild ? undefined : readPreviousRun(databases, config.test, 'test', logger);
        previous?.catch(() => undefined);
        const provisioned = await provisionWithSession(config, { logger, admin });
        session = provisioned.session;
        note(
          `${server.provider} ${config.test.describe()}` +
            (provisioned.result.changes.length > 0 ? `; ${provisioned.result.changes.join('; ')}` : ''),
        );
        return { config, admin, server, opened, databases };
      },
    );

    const run: RunContext = {
      config,
      admin,
      databases,
      context,
      rebuild,
      workerCount: Math.max(1, Math.floor(workerCount)),
    };
    const prepared = await prepareTwin(run, opened, await local, { previous, session });
    return new TwinSetup(run, { server, source: opened.source.name, prepared }, resolveOptions, held);
  } catch (error) {
    await held.release();
    throw error;
  } finally {
    // Ended before any step that replaces the test database; here only in case a failure came first.
    if (session) endSoon(session);
    await opening.then(({ source }) => source.close()).catch(() => undefined);
  }
}

/** What a run holds open until it closes: sessions on the twin's server, and the server if pgtwin started it. */
class HeldResources {
  readonly sessions: pg.Client[] = [];
  server?: { stop(): Promise<void> };

  /**
   * Ends the sessions, and `alsoEnding` (another session's end), at once: each waits 10–20 ms for its backend
   * to exit, so one after another they added up at every run's end. Then stops the server. Idempotent.
   */
  async release(...alsoEnding: Promise<unknown>[]): Promise<void> {
    const ending = this.sessions.splice(0).map((session) => session.end());
    await Promise.all([...alsoEnding, ...ending].map((end) => end.catch(() => undefined)));
    const server = this.server;
    this.server = undefined;
    await server?.stop().catch(() => undefined);
  }
}

/** An open source, the reading of its half of the fingerprint started at once. */
interface OpenedSource {
  readonly source: TwinSourceReader;
  readonly fingerprint: ReturnType<TwinSourceReader['readFingerprint']>;
}

function startReading(
  source: TwinSourceReader,
  options: Parameters<TwinSourceReader['readFingerprint']>[0],
): OpenedSource {
  const fingerprint = source.readFingerprint(options);
  // Awaited by the template step; this keeps a failure elsewhere first from leaving it unhandled.
  fingerprint.catch(() => undefined);
  return { source, fingerprint };
}

/** The fingerprint a run computed, and the structure fingerprint it read (absent for schema scripts). */
interface ReadFingerprint {
  fingerprint: string;
  structure: string | undefined;
  proofs: ProductionProofs | undefined;
}

/** The test database made equal to a leased template, by copying it or not. */
interface TestOnTemplate {
  lease: TemplateLease;
  copied: boolean;
  structure: string | undefined;
  /** When kept: the state it was just verified to be in, for the run's watch. */
  verified?: LeakBaseline;
  /** The run's watch, started once a test connection is known to land in it. */
  watch?: CleanRunWatch;
  /** Where and when production was proven (see `recordProductionQuiet`). */
  proofs?: ProductionProofs;
  /** What the template this run built holds, counted as the build ended: what the fresh copy holds. */
  built?: ContentCounts;
}

/**
 * The `template` phase, then the `workers` phase: reads the fingerprint, makes the test database equal to
 * the template of that fingerprint (see {@link warmStart}; else leasing or building the template and copying
 * it), checks where a test connection lands, starts watching the test database for the teardown, and
 * makes each worker's database equal to the template in the same way (see {@link prepareWorkers}).
 * `previous`: what the previous run left, for a warm start
 * (none: build or lease, and copy). `session`: the test role's open session on the test database (from
 * provisioning), read on while that database is kept and ended before it is replaced.
 */
async function prepareTwin(
  run: RunContext,
  opened: OpenedSource,
  local: LocalInputs,
  options: { previous: Promise<PreviousRun | undefined> | undefined; session: pg.Client | undefined },
): Promise<PreparedTwin> {
  try {
    return await prepareTwinOnce(run, opened, local, options);
  } finally {
    // The databases the copies replaced are dropped meanwhile; no test starts (and on a failure, nothing
    // closes) before they are gone.
    await run.databases.settle();
  }
}

async function prepareTwinOnce(
  run: RunContext,
  { source, fingerprint: sourceFingerprint }: OpenedSource,
  local: LocalInputs,
  options: { previous: Promise<PreviousRun | undefined> | undefined; session: pg.Client | undefined },
): Promise<PreparedTwin> {
  const { config, admin, databases, context, rebuild } = run;
  const onTemplate = await runPhase('template', context, async (note) => {
    const version = await serverVersion(admin);
    const reading = (async (): Promise<ReadFingerprint> => {
      const read = await sourceFingerprint;
      const inputs = await fingerprintInputs(
        config,
        {
          structure: read.structure,
          data: read.data,
          serverVersion: version,
          pgtwinVersion: pgtwinVersion(),
        },
        local,
      );
      for (const [name, digest] of Object.entries(inputs))
        context.logger.debug(`fingerprint ${name}: ${digest}`);
      return {
        fingerprint: fingerprintOf(inputs),
        structure: read.structureFingerprint,
        proofs: read.proofs,
      };
    })();
    // Awaited on every path below; this only keeps an early failure elsewhere from leaving it unhandled.
    reading.catch(() => undefined);

    const previous = await options.previous;
    const warm = previous
      ? await warmStart(config, databases, reading, previous, options.session)
      : undefined;
    if (!warm) await options.session?.end();
    const result = warm ?? (await coldStart(run, source, reading));
    const { lease } = result;
    try {
      // Kept: the session provisioning judged is still on it; else the database is new.
      const session = (!result.copied && options.session) || (await connect(config.test, 'test'));
      try {
        await landsWhereAsked(config, session, config.test.database);
        result.watch = await watchTestDatabase(run, result, previous, session);
      } finally {
        // Nothing replaces the test database from here on in this setup.
        endSoon(session);
      }
    } catch (error) {
      await lease.release();
      throw error;
    }
    const kept = result.copied ? '' : `, ${config.test.database} kept (left clean)`;
    if (lease.built) note(`${lease.template} built${rebuild ? ' (PGTWIN_REBUILD)' : ''}`);
    else note(`${lease.template} reused (fingerprint unchanged)${kept}`, 'lead');
    result.proofs = (await reading).proofs;
    return result;
  });
  const { lease, watch } = onTemplate;
  try {
    const workers = await prepareWorkers(run, lease, watch!);
    return {
      lease,
      copied: onTemplate.copied,
      workers,
      inputs: { ...local, structure: onTemplate.structure },
      watch: watch!,
      proofs: onTemplate.proofs,
    };
  } catch (error) {
    await lease.release();
    throw error;
  }
}

/**
 * Starts the run's watch on the test database. A fresh copy holds what every copy of its template holds: the
 * first run to copy a template counts it and records the counts on the test database's marker, under the
 * template's OID (a template rebuilt under the same name has another), and the next runs that copy the same
 * template take them from the marker the previous run left, instead of counting every table again. A run
 * that took them and then finds changes committed drops the record (it may have been counted after a stray
 * write), so the next copy counts again.
 */
async function watchTestDatabase(
  { config, databases }: RunContext,
  result: TestOnTemplate,
  previous: PreviousRun | undefined,
  session: pg.ClientBase,
): Promise<CleanRunWatch> {
  const { lease, verified } = result;
  if (!result.copied) {
    const sequences = previous?.marker.cleanSequences;
    return CleanRunWatch.start(config.test, lease.fingerprint, { verified, session, sequences });
  }
  const template = await databases.oid(lease.template);
  const recorded = previous?.marker.copyCounts;
  const known =
    result.built ?? (template !== undefined && recorded?.template === template ? recorded : undefined);
  const watch = await CleanRunWatch.start(config.test, lease.fingerprint, { session, known });
  const marker = await databases.marker(config.test.database);
  if (template !== undefined && marker)
    await databases.stamp(config.test.database, {
      ...marker,
      copyCounts: { template, ...watch.counts() },
    });
  return watch;
}

/** Thrown inside a speculative copy whose template turned out to be stale, so the copy is discarded. */
class FingerprintChanged extends Error {}

/** What the previous run left in a test or worker database's marker, and, when it left it clean, the check since. */
interface PreviousRun {
  readonly marker: TestMarker;
  readonly fingerprint: string;
  readonly checking: ReturnType<typeof changedSinceClean> | undefined;
}

/**
 * Reads the marker of `target`, the test database or a worker's (`kind`), and, when the previous run left it
 * clean, starts checking that nothing was committed since, at once: provisioning goes on meanwhile and
 * changes no row of a database already in place (a catalog change it makes, the check sees). `undefined`: no
 * previous run with a fingerprint, or with another than `expected` when given. `ownWritesSince`: see
 * {@link changedSinceClean}.
 */
async function readPreviousRun(
  databases: TwinDatabases,
  target: DatabaseTarget,
  kind: 'test' | 'worker',
  logger: Logger,
  options: { expected?: string; ownWritesSince?: (xmax: string) => string[] } = {},
): Promise<PreviousRun | undefined> {
  const { expected, ownWritesSince } = options;
  const { database } = target;
  const marker = await databases.marker(database);
  const fingerprint = marker?.kind === kind ? marker.fingerprint : undefined;
  if (!marker || !fingerprint || (expected !== undefined && fingerprint !== expected)) return undefined;
  let checking: PreviousRun['checking'];
  if (marker.clean) {
    // Only read, but only from a database the guard has judged.
    const admin = await databases.admin();
    await guardDestructive({ config: databases.config, admin, database, operation: 'check for changes in' });
    checking = changedSinceClean(target, marker, admin, ownWritesSince).then((result) => {
      if ('unchanged' in result)
        logger.debug(
          result.quiet
            ? `${database}: no transaction committed on the server since the previous run but pgtwin's own markers; not read again`
            : `${database}: read again, nothing committed since the previous run`,
        );
      return result;
    });
    checking.catch(() => undefined);
  }
  return { marker, fingerprint, checking };
}

/**
 * A warm start from what the previous run left (the test database's marker): when it left the test database
 * clean for the fingerprint just read, keeps it as it is; else copies the previous run's template into place
 * while the fingerprint is read, and keeps the copy only when the fingerprint is unchanged. `undefined` when
 * neither applies (its template gone, or the fingerprint changed).
 */
async function warmStart(
  config: ResolvedConfig,
  databases: TwinDatabases,
  reading: Promise<ReadFingerprint>,
  { marker: previous, fingerprint, checking }: PreviousRun,
  session: pg.Client | undefined,
): Promise<TestOnTemplate | undefined> {
  const lease = await databases.leaseTemplate(fingerprint);
  if (!lease) return undefined;
  try {
    const verified = await checking;
    if (verified && 'unchanged' in verified) {
      const current = await reading;
      if (current.fingerprint !== fingerprint) {
        await lease.release();
        return undefined;
      }
      await markRunStarted(databases, config.test.database, {
        ...previous,
        ...newMarker('test'),
        fingerprint,
      });
      return { lease, copied: false, structure: current.structure, verified: verified.unchanged };
    }
    let structure: string | undefined;
    // The copy replaces the test database: no session may hold it.
    await session?.end();
    try {
      await copyTemplate(config, databases, lease, async () => {
        const current = await reading;
        if (current.fingerprint !== fingerprint) throw new FingerprintChanged();
        structure = current.structure;
      });
    } catch (error) {
      if (!(error instanceof FingerprintChanged)) throw error;
      await lease.release();
      return undefined;
    }
    return { lease, copied: true, structure };
  } catch (error) {
    await lease.release();
    throw error;
  }
}

/**
 * Leases the template of the fingerprint, building it when it is not on the server, and copies it. A build
 * that is certain (`PGTWIN_REBUILD`) or all but certain (no template of this project on the server) starts at
 * once, while the fingerprint is still being read.
 */
async function coldStart(
  run: RunContext,
  source: TwinSourceReader,
  reading: Promise<ReadFingerprint>,
): Promise<TestOnTemplate> {
  const { config, databases, context, rebuild } = run;
  const fingerprint = reading.then((read) => read.fingerprint);
  const ahead = rebuild || !(await databases.hasProjectTemplate());
  let built: ContentCounts | undefined;
  const lease = await databases.ensureTemplate(
    ahead ? fingerprint : await fingerprint,
    async (target) => {
      built = await buildTwin(config, target, { source, context, count: true });
    },
    { rebuild, logger: context.logger },
  );
  const { structure } = await reading;
  try {
    await copyTemplate(config, databases, lease);
  } catch (error) {
    await lease.release();
    throw error;
  }
  // A build another run published first was discarded: the template leased is that run's.
  return { lease, copied: true, structure, built: lease.built ? built : undefined };
}

/**
 * Copies the leased template into place as the test database, stamped with its fingerprint (not clean); a
 * failing `check` (run while the copy is still under its work-in-progress name) discards the copy.
 */
async function copyTemplate(
  config: ResolvedConfig,
  databases: TwinDatabases,
  lease: TemplateLease,
  check?: () => Promise<void>,
): Promise<void> {
  await databases.create(config.test.database, {
    template: lease.template,
    marker: { ...newMarker('test'), fingerprint: lease.fingerprint },
    fill: check,
  });
}

/**
 * The `workers` phase: with more than one worker, each worker's own database, `<test>_w<id>`, made equal to
 * the template as the test database is: kept when the previous run left it clean for this template (nothing
 * committed since), else copied from it, the copies in parallel; then checked (where a connection lands) and
 * watched for the teardown. `test`: the test database's watch, which counted or proved what a fresh copy of
 * the template holds. Worker databases earlier runs with more workers left are dropped first.
 */
async function prepareWorkers(
  run: RunContext,
  lease: TemplateLease,
  test: CleanRunWatch,
): Promise<PreparedWorker[]> {
  await dropSurplusWorkers(run);
  if (run.workerCount <= 1) return [];
  const { config, databases, context } = run;
  const { fingerprint } = lease;
  return runPhase('workers', context, async (note) => {
    const targets = Array.from(
      { length: run.workerCount },
      (_, index) => workerTarget(config, index + 1).target,
    );
    // Every check before any write of this phase (a write a check's proof does not list would have it count
    // every table), each on an admin session of its own (one session runs one statement at a time).
    const ownWritesSince = (xmax: string) => [
      ...databases.markerWritesSince(xmax),
      ...test.sequenceWritesSince(xmax),
    ];
    const kept = await Promise.all(
      targets.map((target) =>
        databases.alongside(async (own) => {
          const previous = await readPreviousRun(own, target, 'worker', context.logger, {
            expected: fingerprint,
            ownWritesSince,
          });
          const verified = await previous?.checking;
          return previous && verified && 'unchanged' in verified
            ? { marker: previous.marker, baseline: verified.unchanged }
            : undefined;
        }),
      ),
    );
    await databases.stampAll(
      targets.flatMap((target, i) => {
        const marker = kept[i]?.marker;
        if (!marker) return [];
        return [
          [target.database, runStartedMarker({ ...marker, ...newMarker('worker'), fingerprint })] as const,
        ];
      }),
    );
    const workers = await Promise.all(
      targets.map(async (target, i): Promise<PreparedWorker> => {
        const previous = kept[i];
        if (!previous) {
          await databases.alongside((own) =>
            own.copy(lease.template, target.database, { kind: 'worker', fingerprint }),
          );
        }
        const session = await connect(target, 'test');
        try {
          await landsWhereAsked(config, session, target.database);
          const watch = await CleanRunWatch.start(target, fingerprint, {
            session,
            ...(previous
              ? { verified: previous.baseline, sequences: previous.marker.cleanSequences }
              : { known: test.counts() }),
          });
          return { target, watch, copied: !previous };
        } finally {
          endSoon(session);
        }
      }),
    );
    const names = targets.map((target) => target.database);
    const keptCount = kept.filter(Boolean).length;
    note(
      (names.length <= 4 ? names.join(', ') : `${names[0]} … ${names.at(-1)}`) +
        (keptCount === 0 ? '' : `; ${keptCount === names.length ? 'all' : keptCount} kept (left clean)`),
    );
    return workers;
  });
}

/**
 * Drops the worker databases of this test database (`<test>_w<id>`, stamped `worker`) beyond this run's
 * workers, which earlier runs with more workers left clean: with one worker, all of them.
 */
async function dropSurplusWorkers({ config, databases, workerCount }: RunContext): Promise<void> {
  const prefix = `${config.test.database}_w`;
  const used = workerCount > 1 ? workerCount : 0;
  for (const { name, marker } of await databases.list()) {
    const id = name.startsWith(prefix) ? name.slice(prefix.length) : '';
    if (marker.kind === 'worker' && /^[1-9][0-9]*$/.test(id) && Number(id) > used) await databases.drop(name);
  }
}

/**
 * The tests connect by name, maybe through a pooler that maps names elsewhere: checks that `session`, opened
 * to `database` (the test database or a worker's) as the test role, landed in it, and that it is not
 * production, before any test runs.
 */
async function landsWhereAsked(
  config: ResolvedConfig,
  session: pg.ClientBase,
  database: string,
): Promise<void> {
  await guardDestructive({ config, client: session, database, operation: 'run tests in' });
}

function handoffOptions(options: ResolveConfigOptions): ResolveConfigOptions {
  // The workers read their own environment; rootDir travels separately.
  const { env: _env, rootDir: _rootDir, ...rest } = options;
  return rest;
}
