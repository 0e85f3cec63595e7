import type { FixtureSize } from '../fixtures/contentgen/index.js';
import type { MirrorMeasurement } from './mirror-memory.js';

/** What one measurement could not do, in place of its numbers: the bench goes on without it. */
export interface Skipped {
  skipped: string;
}

/** The median of a few runs, and the runs themselves (ms unless the field says otherwise). */
export interface Timing {
  medianMs: number;
  runsMs: number[];
}

/** The fixture production the bench builds and measures against. */
export interface FixtureResult {
  size: FixtureSize;
  /** Rows per table of interest. */
  rows: Record<string, number>;
  /** Rows in the mirrored tables (object_models + prompts). */
  mirroredRows: number;
  buildSeconds: number;
}

/** Setup in process through the template store: cold (rebuild) and warm (reuse), vs pg_dump | psql. */
export interface SetupResult {
  coldMs: number;
  coldBreakdownMs: { fingerprint: number; build: number; clone: number };
  /** `pg_dump --schema-only | psql`, then `pg_dump --data-only -t <mirrored> | psql`, into a new database. */
  pgDumpPsqlMs: number;
  coldVsPgDump: number;
  warmMs: number;
  warmBreakdownMs: { fingerprint: number; lease: number; clone: number };
  warmVsCold: number;
}

/** The `pgtwin` command as a user runs it (`node dist/cli.js`), wall time including Node's start-up. */
export interface CliSetupResult {
  /** `pgtwin --version`: the command's start-up alone. */
  startup: Timing;
  /** `PGTWIN_REBUILD=1 pgtwin setup`: the template built again from production. */
  cold: Timing;
  /** `pgtwin setup` again with nothing changed. */
  warm: Timing;
  /** `pgtwin setup` after a run committed a row to the test database outside any test. */
  warmAfterLeak: Timing;
  /** Whether that committed row was gone after the setup that followed it (every run). */
  leakCleared: boolean;
  /** The setup's own phases of the last warm run, as `pgtwin setup --json` reports them. */
  warmPhasesMs: Record<string, number>;
  /** The same shell pipeline as {@link SetupResult.pgDumpPsqlMs}, timed the same way. */
  pgDumpPsqlMs: number;
  coldVsPgDump: number;
  /**
   * Busy CPU time of the whole machine (every process, the servers' included), medians over the cold
   * pairs; `coldVsPipeline` is the median of each pair's ratio. Absent from results from before it was measured.
   */
  cpu?: { pipelineMs: number; coldMs: number; coldVsPipeline: number };
  warmVsPgDump: number;
  warmVsCold: number;
  warmAfterLeakVsPgDump: number;
  startupVsWarm: number;
}

/** `pgtwin setup` with `PGTWIN_PROVIDER=embedded` on a new data directory, then again. */
export interface EmbeddedSetupResult {
  /** initdb, start, build the template from production, copy it. */
  firstMs: number;
  /** Start the stopped server again, reuse the template. */
  secondMs: number;
  /** Whether the second run reused the first one's template (`reused` in the phase line). */
  secondReused: boolean;
  secondPhasesMs: Record<string, number>;
  secondVsPgDump: number;
}

/** Reading the fingerprint's inputs from production. */
export interface FingerprintResult {
  structureMs: number;
  checksumMs: number;
  md5ChecksumMs: number;
  /** Proving the checksums of a previous reading still hold (the warm path). Absent in older results. */
  unchangedMs?: number;
  statsMs: number;
}

export interface CloneStrategyTiming {
  singleMs: number;
  fourWorkersMs: number;
  perWorkerMs: number;
}

export interface CloneResult {
  templateMb: number;
  strategies: { FILE_COPY: CloneStrategyTiming; WAL_LOG: CloneStrategyTiming };
}

/** An opted-out test's copy of the template: taken from the worker's pool of ready copies, or created. */
export interface ReadyCopyResult {
  runs: number;
  /** Median ms to take a ready copy (a rename), connecting as the first take of a test file's process does. */
  takeReadyMs: number;
  /** Median ms to create one when asked (`CREATE DATABASE ... TEMPLATE`, as with `isolation.readyCopies: 0`). */
  createMs: number;
  /** Median ms to drop a used copy (done in the background, during the next tests). */
  dropMs: number;
}

/** The global setup with several workers: their databases copied from the template, or kept from the previous run. */
export interface WorkerSetupResult {
  workers: number;
  runs: number;
  /** Medians: the `workers` phase, the whole setup, the teardown (which stamps or drops them). */
  copied: { workersMs: number; setupMs: number; teardownMs: number };
  kept: { workersMs: number; setupMs: number; teardownMs: number };
}

export const ENGINES = ['raw', 'pgtwin', 'pg-transactional-tests', 'truncate'] as const;
/** How a test's writes are undone: not at all (`raw`), pgtwin's isolation, pg-transactional-tests, TRUNCATE. */
export type Engine = (typeof ENGINES)[number];
export type CleaningEngine = Exclude<Engine, 'raw'>;

export interface IsolationMeasurement {
  engine: Engine;
  /** Mean ms per test with 1 and with `statements` statements. */
  msPerTest: { one: number; many: number };
  /** Round trips per test with 1 and with `statements` statements. */
  tripsPerTest: { one: number; many: number };
}

export interface IsolationResult {
  tests: number;
  statementsPerTest: number;
  engines: IsolationMeasurement[];
  perTestOverheadMs: Record<CleaningEngine, number>;
  perStatementOverheadMs: Record<CleaningEngine, number>;
  extraRoundTripsPerStatement: Record<Engine, number>;
}

/** What the wire endpoint adds per statement, against a direct connection (bench/measurements/endpoint-latency.ts). */
export interface EndpointResult {
  statements: number;
  failingStatements: number;
  /** The median block's time per statement, direct and through the endpoint. */
  directMsPerStatement: number;
  endpointMsPerStatement: number;
  /** The median over blocks of the endpoint's block minus the direct block run just before it. */
  addedMsPerStatement: number;
  /**
   * A plain TCP relay in the bench process (bytes passed on, nothing read), against the same direct
   * connection: what any endpoint living in a Node process adds before doing anything. Absent in older results.
   */
  relayAddedMsPerStatement?: number;
  /** Round trips on the server's side beyond the direct connection's, per successful statement. */
  extraRoundTripsPerStatement: number;
  /** The same for a statement that fails (its savepoint is rolled back after the client's Sync). */
  extraRoundTripsPerFailingStatement: number;
  /** Two endpoint clients with different settings alternating: each statement switches the settings. */
  switchingMsPerStatement: number;
  /** Round trips beyond the direct connection's per successful statement, while alternating. */
  extraRoundTripsPerSwitchingStatement: number;
}

/** Tests run concurrently in transactions of their own (`runTest`, as under Vitest's `describe.concurrent`). */
export interface ConcurrentIsolationResult {
  tests: number;
  statementsPerTest: number;
  /** How many tests run at once. */
  atOnce: number;
  /** Mean wall time per test: isolated one after another, isolated `atOnce` at a time, plain pg `atOnce` at a time. */
  msPerTest: { sequential: number; concurrent: number; rawConcurrent: number };
  /** `concurrent` − `rawConcurrent`: what isolation adds to each concurrent test. */
  concurrentOverheadVsRawMs: number;
}

export interface SeedResult {
  rows: number;
  /** As the pipeline loads the file: after the structure and the mirror, on the same connection. */
  rowsPerSecond: number;
  runs: { pipeline: number[]; fresh: number[]; psqlCopy: number[] };
  freshCloneRowsPerSecond: number;
  psqlCopyRowsPerSecond: number;
}

export interface MirrorResult {
  rows: number;
  rowsPerSecond: number;
  pgDumpPsqlRowsPerSecond: number;
  /** 1,000,000 rows in a process of its own (bench/mirror-memory.ts). */
  memory: MirrorMeasurement | { error: string };
}

/** Everything one `npm run bench` measured: bench/results.json. */
export interface Results {
  date: string;
  machine: { cpus: number; node: string; server: string; loadAverage: [number, number, number] };
  fixture: FixtureResult;
  runs: Runs;
  setup: SetupResult;
  cli: CliSetupResult | Skipped;
  embedded: EmbeddedSetupResult | Skipped;
  fingerprint: FingerprintResult;
  clone: CloneResult;
  /** Absent in results from before it was measured. */
  readyCopy?: ReadyCopyResult;
  /** Absent in results from before it was measured. */
  workerSetup?: WorkerSetupResult;
  isolation: IsolationResult;
  /** Absent in results from before the endpoint existed. */
  endpoint?: EndpointResult;
  /** Absent from results written before it was measured. */
  concurrentIsolation?: ConcurrentIsolationResult;
  seed: SeedResult;
  mirror: MirrorResult;
  benchSeconds: number;
}

/** How many times each measurement runs; its median is reported. */
export interface Runs {
  cold: number;
  warm: number;
  clone: number;
  seed: number;
  mirror: number;
  cli: number;
}

/** Whether a measurement was skipped (with its reason) instead of measured. */
export function isSkipped<T extends object>(result: T | Skipped): result is Skipped {
  return 'skipped' in result;
}
