/**
 * Child process of crash-recovery.test.ts: the global setup with `CRASH_WORKERS` workers (the CLI always
 * runs one), so the parent can kill it while it copies the worker databases. Phase lines go to stderr; on
 * success it prints `{ template, workers }` as JSON and closes the run (which drops the worker copies).
 */
import { runGlobalSetup } from '../../src/pipeline/global-setup.js';

const twin = await runGlobalSetup({
  rootDir: process.cwd(),
  workers: Number(process.env.CRASH_WORKERS ?? 2),
});
try {
  process.stdout.write(
    `${JSON.stringify({ template: twin.template.database, workers: twin.workers.map((w) => w.database) })}\n`,
  );
} finally {
  await twin.close();
}
