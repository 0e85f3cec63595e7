import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { round } from './bench-context.js';
import { isSkipped, type CliSetupResult, type Engine, type Results } from './results.js';

/** Writes `results` to `dir`/results.json and `dir`/RESULTS.md. */
export async function writeResults(dir: string, results: Results): Promise<void> {
  await writeFile(path.join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(path.join(dir, 'RESULTS.md'), renderResults(results));
}

/** One goal: what it asks, what was measured, and whether that meets it (undefined: not measured). */
interface Goal {
  goal: string;
  measured: string;
  met: boolean | undefined;
}

/**
 * The goals the issues set, beside what this run measured; reported, never asserted. The setup goals are
 * the warm-starts issue's, against the `pg_dump | psql` pipeline a user would script, measured through the
 * command a user runs.
 */
export function goals(r: Results): Goal[] {
  const cli = isSkipped(r.cli) ? undefined : r.cli;
  const notMeasured = (reason: string): Pick<Goal, 'measured' | 'met'> => ({
    measured: `not measured: ${reason}`,
    met: undefined,
  });
  const mem = r.mirror.memory;
  const iso = r.isolation;
  return [
    {
      goal: 'cold `pgtwin setup` ≤ 0.6× pg_dump \\| psql',
      ...(cli
        ? {
            measured: `${cli.coldVsPgDump}×${cli.cpu ? ` (the pipeline's own CPU work on all ${r.machine.cpus} cores at once: ${cpuFloor(r, cli)}×)` : ''}`,
            met: cli.coldVsPgDump <= 0.6,
          }
        : notMeasured(skipReason(r.cli))),
    },
    {
      goal: 'warm `pgtwin setup`, nothing changed, ≤ 0.15× pg_dump \\| psql',
      ...(cli
        ? { measured: `${cli.warmVsPgDump}×`, met: cli.warmVsPgDump <= 0.15 }
        : notMeasured(skipReason(r.cli))),
    },
    {
      goal: 'per-test overhead ≤ 1 ms',
      measured: `${iso.perTestOverheadMs.pgtwin} ms`,
      met: iso.perTestOverheadMs.pgtwin <= 1,
    },
    {
      goal: '≤ 1 extra round trip per statement',
      measured: `${iso.extraRoundTripsPerStatement.pgtwin}`,
      met: iso.extraRoundTripsPerStatement.pgtwin <= 1,
    },
    ...(r.endpoint
      ? [
          {
            goal: 'wire endpoint: 0 extra round trips per successful statement',
            measured: `${r.endpoint.extraRoundTripsPerStatement} (failing: ${r.endpoint.extraRoundTripsPerFailingStatement})`,
            met: r.endpoint.extraRoundTripsPerStatement <= 0,
          },
          {
            goal: 'wire endpoint: < 0.1 ms added per statement on loopback',
            measured:
              `${r.endpoint.addedMsPerStatement} ms (median block: ${r.endpoint.directMsPerStatement} direct, ${r.endpoint.endpointMsPerStatement} through the endpoint; added: median of the blocks' differences)` +
              (r.endpoint.relayAddedMsPerStatement === undefined
                ? ''
                : `; a plain TCP relay in Node adds ${r.endpoint.relayAddedMsPerStatement} ms`),
            met: r.endpoint.addedMsPerStatement < 0.1,
          },
          {
            goal: 'wire endpoint: 0 extra round trips when two clients with different settings alternate',
            measured: `${r.endpoint.extraRoundTripsPerSwitchingStatement} (${r.endpoint.switchingMsPerStatement} ms per statement, one client: ${r.endpoint.endpointMsPerStatement} ms)`,
            met: r.endpoint.extraRoundTripsPerSwitchingStatement <= 0,
          },
        ]
      : []),
    {
      goal: 'an opted-out test takes a ready copy in < 50 ms',
      ...(r.readyCopy
        ? { measured: `${r.readyCopy.takeReadyMs} ms`, met: r.readyCopy.takeReadyMs < 50 }
        : notMeasured('not in this run')),
    },
    {
      goal: 'seeds ≥ 50,000 rows/s (10,000-row file, as the pipeline loads it)',
      measured: `${r.seed.rowsPerSecond} rows/s`,
      met: r.seed.rowsPerSecond >= 50_000,
    },
    {
      goal: 'mirror ≥ pg_dump --data-only \\| psql',
      measured: `${r.mirror.rowsPerSecond} vs ${r.mirror.pgDumpPsqlRowsPerSecond} rows/s`,
      met: r.mirror.rowsPerSecond >= r.mirror.pgDumpPsqlRowsPerSecond,
    },
    {
      goal: 'mirror < 150 MB RSS for 1M rows',
      measured: 'error' in mem ? mem.error : `${mem.peakRssMb} MB peak`,
      met: 'error' in mem ? undefined : mem.peakRssMb < 150,
    },
  ];
}

function concurrentSection(r: Results): string {
  const c = r.concurrentIsolation;
  if (!c) return '';
  return `
### Concurrent tests (${c.tests} tests of ${c.statementsPerTest} statements, ${c.atOnce} at a time)

| | ms/test (wall) |
| --- | ---: |
| isolated, one after another | ${c.msPerTest.sequential} |
| isolated, ${c.atOnce} at a time (each on its own connection, as \`describe.concurrent\`) | ${c.msPerTest.concurrent} |
| plain pg, ${c.atOnce} at a time (no cleanup) | ${c.msPerTest.rawConcurrent} |

Per-test overhead of concurrent isolation against plain pg at the same concurrency: ${c.concurrentOverheadVsRawMs} ms.
`;
}

function skipReason(result: object): string {
  return 'skipped' in result ? String(result.skipped) : '';
}

/** ` (runs 41000–58000)`: the range behind a median. */
function spread(runs: readonly number[]): string {
  return runs.length > 1 ? ` (runs ${Math.min(...runs)}–${Math.max(...runs)})` : '';
}

const status = (met: boolean | undefined) =>
  met === undefined ? 'not measured' : met ? 'met' : '**not met**';

function commandSection(r: Results): string {
  if (isSkipped(r.cli)) return `Not measured: ${r.cli.skipped}\n`;
  const c = r.cli;
  const e = r.embedded;
  const row = (what: string, ms: number | string, ratio: string, runs: readonly number[] = []) =>
    `| ${what} | ${ms}${spread(runs)} | ${ratio} |`;
  const embeddedRows = isSkipped(e)
    ? [row('embedded provider, second run', '–', `skipped: ${e.skipped.replaceAll('|', '\\|')}`)]
    : [
        row(
          `embedded provider, second run (server started again, template ${e.secondReused ? 'reused' : '**rebuilt**'})`,
          e.secondMs,
          `${e.secondVsPgDump}×`,
        ),
        row('embedded provider, first run (initdb, start, build)', e.firstMs, '–'),
      ];
  const phases = (times: Record<string, number>) =>
    Object.entries(times)
      .map(([name, ms]) => `${name} ${ms}`)
      .join(' + ');
  const embeddedPhases = isSkipped(e)
    ? ''
    : ` The embedded second run's phases: ${phases(e.secondPhasesMs)} ms (provision includes starting the server).`;
  return `| | ms | vs pg_dump \\| psql |
| --- | ---: | ---: |
${row('pg_dump --schema-only \\| psql, then pg_dump --data-only -t (mirrored) \\| psql', c.pgDumpPsqlMs, '1')}
${row('`pgtwin --version`: the command\u2019s start-up alone', c.startup.medianMs, `${round(c.startup.medianMs / c.pgDumpPsqlMs, 3)}×`, c.startup.runsMs)}
${row('`PGTWIN_REBUILD=1 pgtwin setup`: cold', c.cold.medianMs, `${c.coldVsPgDump}× (goal ≤ 0.6×)`, c.cold.runsMs)}
${row('`pgtwin setup`, nothing changed: warm', c.warm.medianMs, `${c.warmVsPgDump}× (goal ≤ 0.15×); ${c.warmVsCold}× cold`, c.warm.runsMs)}
${row(`\`pgtwin setup\` after a run that committed a row outside a test (row gone afterwards: ${c.leakCleared ? 'yes' : '**no**'})`, c.warmAfterLeak.medianMs, `${c.warmAfterLeakVsPgDump}×`, c.warmAfterLeak.runsMs)}
${embeddedRows.join('\n')}

Wall time of \`node dist/cli.js\` as a user waits for it, medians of ${r.runs.cli} runs; each cold run follows a run of
the pipeline, and its ratio is the median of each pair's (the pipeline row: the median of those runs). The warm setup's own phases
(\`--json\`): ${phases(c.warmPhasesMs)} ms; the rest is Node's start-up and loading the command (start-up
alone is ${c.startupVsWarm}× the warm setup).${embeddedPhases}
${cpuParagraph(r, c)}`;
}

/**
 * The cold ratio a run would reach doing no more CPU work than the pipeline, with every core busy from its
 * first millisecond to its last: how far below it the cold goal can be reached on this machine at all.
 */
function cpuFloor(r: Results, c: CliSetupResult): number {
  return round(c.cpu!.pipelineMs / r.machine.cpus / c.pgDumpPsqlMs, 2);
}

function cpuParagraph(r: Results, c: CliSetupResult): string {
  if (!c.cpu) return '';
  const cores = (cpuMs: number, wallMs: number) => round(cpuMs / wallMs, 2);
  return `
CPU time, the whole machine's (every process, the servers' backends included), medians of the same pairs: the
pipeline ${round(c.cpu.pipelineMs / 1000, 2)} s (${cores(c.cpu.pipelineMs, c.pgDumpPsqlMs)} cores busy on average), the cold
setup ${round(c.cpu.coldMs / 1000, 2)} s (${cores(c.cpu.coldMs, c.cold.medianMs)} cores busy), ${c.cpu.coldVsPipeline}× the pipeline's: the same rows
loaded, the same indexes built, plus Node's start-up and relay, the production checksums of the fingerprint,
the seeds and the copy to the test database. Doing only the pipeline's work, with all ${r.machine.cpus} cores busy from
the first millisecond to the last, would take ${cpuFloor(r, c)}× the pipeline.
`;
}

/** The opted-out test's copy: taken ready from the pool, or created when asked. */
function readyCopySection(r: Results): string {
  const c = r.readyCopy;
  if (!c) return '';
  return `
## A copy for an opted-out test (medians of ${c.runs})

| | ms |
| --- | ---: |
| take a ready copy from the worker's pool (a rename; with connecting, as the first opt-out of a test file) | ${c.takeReadyMs} |
| create one when asked (\`isolation.readyCopies: 0\`) | ${c.createMs} |
| drop it after the test (in the background, during the next tests) | ${c.dropMs} |
`;
}

/** The worker databases of a run with several workers: copied from the template, or kept from the last run. */
function workerSetupSection(r: Results): string {
  const w = r.workerSetup;
  if (!w) return '';
  const row = (label: string, t: typeof w.copied) =>
    `| ${label} | ${t.workersMs} | ${t.setupMs} | ${t.teardownMs} |`;
  return `
## Worker databases (${w.workers} workers, global setup in process, medians of ${w.runs})

| | workers phase, ms | whole setup, ms | teardown, ms |
| --- | ---: | ---: | ---: |
${row('copied from the template (after a run on one worker, which drops them)', w.copied)}
${row('kept: the previous run left them clean, nothing committed since', w.kept)}
`;
}

/** bench/RESULTS.md. */
export function renderResults(r: Results): string {
  const iso = r.isolation;
  const mem = r.mirror.memory;
  const s = r.setup;
  const strategies = r.clone.strategies;
  const fastest = strategies.FILE_COPY.singleMs <= strategies.WAL_LOG.singleMs ? 'FILE_COPY' : 'WAL_LOG';
  const overhead = (engine: Engine, of: Record<Exclude<Engine, 'raw'>, number>) =>
    engine === 'raw' ? '–' : of[engine];
  const engineRows = iso.engines
    .map(
      (e) =>
        `| ${e.engine} | ${e.msPerTest.one} | ${e.msPerTest.many} | ${e.tripsPerTest.one} | ${e.tripsPerTest.many} | ${overhead(e.engine, iso.perTestOverheadMs)} | ${overhead(e.engine, iso.perStatementOverheadMs)} | ${iso.extraRoundTripsPerStatement[e.engine]} |`,
    )
    .join('\n');
  const load = r.machine.loadAverage.map((n) => n.toFixed(2)).join(', ');
  return `# pgtwin benchmark

Generated by \`npm run bench\` on ${r.date} (${r.machine.cpus} CPUs, load average ${load} at the start, Node ${r.machine.node}, PostgreSQL ${r.machine.server}); whole bench ${r.benchSeconds} s.
Medians of ${r.runs.cold} cold, ${r.runs.warm} warm, ${r.runs.clone} clone, ${r.runs.seed} seed, ${r.runs.mirror} mirror and ${r.runs.cli} command runs.

Fixture: contentgen, ${r.fixture.mirroredRows.toLocaleString('en')} rows in the mirrored tables (${Object.entries(
    r.fixture.rows,
  )
    .map(([t, n]) => `${t} ${n.toLocaleString('en')}`)
    .join(', ')}); template ${r.clone.templateMb} MB.

## Goals

| Goal | Measured | Status |
| --- | --- | --- |
${goals(r)
  .map((g) => `| ${g.goal} | ${g.measured} | ${status(g.met)} |`)
  .join('\n')}

## Setup: the \`pgtwin\` command

${commandSection(r)}
## Setup in process (the template store, no process start)

| | ms | ratio |
| --- | ---: | ---: |
| pg_dump --schema-only \\| psql, then pg_dump --data-only -t (mirrored) \\| psql | ${s.pgDumpPsqlMs} | 1 |
| pgtwin cold (fingerprint ${s.coldBreakdownMs.fingerprint} + build & publish ${s.coldBreakdownMs.build} + clone ${s.coldBreakdownMs.clone}) | ${s.coldMs} | ${s.coldVsPgDump}× pg_dump |
| pgtwin warm (fingerprint ${s.warmBreakdownMs.fingerprint} + lease ${s.warmBreakdownMs.lease} + clone ${s.warmBreakdownMs.clone}) | ${s.warmMs} | ${s.warmVsCold}× cold |

Fingerprint inputs read from production: structure ${r.fingerprint.structureMs} ms, exact checksums of the mirrored tables ${r.fingerprint.checksumMs} ms (with md5, as dumps and the drift report take them: ${r.fingerprint.md5ChecksumMs} ms)${r.fingerprint.unchangedMs === undefined ? '' : `; proving them unchanged since the previous reading, as a warm run does instead of hashing (same row counts, no row written since): ${r.fingerprint.unchangedMs} ms`} (pg_stat_user_tables counters would take ${r.fingerprint.statsMs} ms but lag, reset and miss nothing-changed-in-count updates, so the exact checksums are used).

## Clones (template ${r.clone.templateMb} MB)

| Strategy | one clone, ms | 4 workers in parallel, ms | per worker, ms |
| --- | ---: | ---: | ---: |
${Object.entries(strategies)
  .map(([name, t]) => `| ${name} | ${t.singleMs} | ${t.fourWorkersMs} | ${t.perWorkerMs} |`)
  .join('\n')}

Fastest single clone: ${fastest}.
${readyCopySection(r)}${workerSetupSection(r)}
## Isolation (${iso.tests} tests each; ms per test with 1 and ${iso.statementsPerTest} statements; round trips counted by a proxy)

| Engine | ms/test (1 stmt) | ms/test (${iso.statementsPerTest} stmts) | trips/test (1) | trips/test (${iso.statementsPerTest}) | per-test overhead vs raw, ms | per-statement overhead, ms | extra trips per statement |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${engineRows}

\`raw\`: plain pg, no cleanup (the floor). \`truncate\`: plain pg, then TRUNCATE of every table after each test.
${concurrentSection(r)}
## Throughput

| | rows/s |
| --- | ---: |
| seed (${r.seed.rows.toLocaleString('en')}-row file), as the pipeline loads it: after the structure and the mirror, same connection | ${r.seed.rowsPerSecond}${spread(r.seed.runs.pipeline)} |
| seed, same file, new connection to a fresh clone of the twin | ${r.seed.freshCloneRowsPerSecond}${spread(r.seed.runs.fresh)} |
| psql \\copy of the same rows into a fresh clone (statement time only) | ${r.seed.psqlCopyRowsPerSecond}${spread(r.seed.runs.psqlCopy)} |
| mirror (${r.mirror.rows.toLocaleString('en')} rows) | ${r.mirror.rowsPerSecond} |
| pg_dump --data-only \\| psql, same tables | ${r.mirror.pgDumpPsqlRowsPerSecond} |
| mirror, 1,000,000 rows (bench/mirror-memory.ts) | ${'error' in mem ? mem.error : `${mem.rowsPerSecond}, peak RSS ${mem.peakRssMb} MB`} |

A fresh clone starts with every page and catalog entry cold, which slows psql's COPY as much as pgtwin's loader. There the loader, which also reads the seed file, builds the rows and resolves the references, reaches ${round(r.seed.freshCloneRowsPerSecond / r.seed.psqlCopyRowsPerSecond, 2)}× the rate of psql \\copy loading a ready-made file of the same rows (PostgreSQL checks its foreign keys row by row, pgtwin's once per key).
`;
}
