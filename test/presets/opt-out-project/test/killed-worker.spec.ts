import { setTimeout as sleep } from 'node:timers/promises';
import { pgtwin } from 'pgtwin/vitest';
import { it } from 'vitest';
import { connect } from './clients.cjs';

// Run alone by opt-out.test.ts, which expects the run to fail and to leave no database behind.
it('is killed with its copy in use and a ready copy made', async () => {
  const worker = process.env.TEST_DB_NAME!;
  await pgtwin.isolation(false);
  const client = await connect();
  for (;;) {
    const ready = await client.query('SELECT 1 FROM pg_database WHERE starts_with(datname, $1)', [
      `${worker.slice(0, 30)}_ready_`,
    ]);
    if (ready.rowCount) break;
    await sleep(100);
  }
  process.kill(process.pid, 'SIGKILL');
});
