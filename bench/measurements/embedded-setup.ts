import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EmbeddedServer } from '../../src/provider/embedded-server.js';
import { round, type BenchContext } from '../bench-context.js';
import { cliProject, pgtwinSetup, phaseTimes, reusedTemplate } from '../pgtwin-command.js';
import type { EmbeddedSetupResult, Skipped } from '../results.js';

/**
 * `pgtwin setup` with the embedded provider on a new data directory (initdb, start, build the template
 * from the bench's production), then a second time: the server starts again on the same data directory and
 * should reuse the template. As root the server runs as the `pgtwin` system user. When it cannot start
 * here, the reason is returned instead, and the bench goes on.
 */
export async function measureEmbeddedSetup(
  ctx: BenchContext,
  pgDumpPsqlMs: number,
): Promise<EmbeddedSetupResult | Skipped> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'pgtwin-bench-embedded-'));
  const project = await cliProject(ctx, 'pgtwin_bench_embedded_test', {
    PGTWIN_PROVIDER: 'embedded',
    PGTWIN_EMBEDDED_DATA_DIR: dataDir,
    // A role of the embedded cluster, created there by the setup; the bench server's roles are not there.
    TEST_DB_USER: 'pgtwin_bench_runner',
    TEST_DB_PASS: 'pgtwin-bench',
  });
  try {
    const first = await pgtwinSetup(project);
    ctx.log(`embedded, first run: ${Math.round(first.wallMs)} ms`);
    const second = await pgtwinSetup(project);
    ctx.log(`embedded, second run: ${Math.round(second.wallMs)} ms`);
    return {
      firstMs: round(first.wallMs),
      secondMs: round(second.wallMs),
      secondReused: reusedTemplate(second.document),
      secondPhasesMs: phaseTimes(second.document),
      secondVsPgDump: round(second.wallMs / pgDumpPsqlMs, 3),
    };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    ctx.log(`embedded: skipped: ${reason}`);
    return { skipped: reason.split('\n')[0]!.slice(0, 400) };
  } finally {
    // A failed run may leave its server up; it is the one on this data directory, stopped by its pid.
    await new EmbeddedServer({ dataDir }).stopRunning().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
    await rm(project.rootDir, { recursive: true, force: true });
  }
}
