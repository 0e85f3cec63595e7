import type pg from 'pg';
import type { ResolvedConfig } from 'pgtwin';
import { beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/connection/connect.js';
import { TwinDatabases } from '../../src/provision/twin-databases.js';
import { testConfig } from '../helpers/config.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const scratch = useScratch('twindb');
let config: ResolvedConfig;
let template: string;

beforeAll(async () => {
  template = (await scratch.database('tpl')).name;
  config = await testConfig({ test: { database: scratch.databaseName('test') } });
});

/** Ends `session` from the server's side, as a restart or `idle_session_timeout` does, and waits until it knows. */
async function terminate(session: pg.ClientBase): Promise<void> {
  const { rows } = await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const ended = new Promise((resolve) => session.once('end', resolve));
  await adminQuery('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
  await ended;
}

describe('TwinDatabases when the server ends its admin session during a run', () => {
  it('opens a new session for the next call, so a teardown still drops what the run made', async () => {
    const borrowed = await connect(config.admin, 'admin');
    // The global setup's own session: it listens for errors itself.
    borrowed.on('error', () => undefined);
    const databases = await TwinDatabases.open(config, borrowed);
    const name = scratch.databaseName('copy');
    try {
      await databases.copy(template, name, { kind: 'worker' });
      await terminate(await databases.admin());

      expect((await databases.marker(name))?.kind).toBe('worker');
      await databases.drop(name);
      expect(await databases.marker(name)).toBeUndefined();
    } finally {
      await databases.close();
      await borrowed.end().catch(() => undefined);
    }
  });

  it('does not crash the process when a session it opened itself is ended while idle', async () => {
    const databases = await TwinDatabases.open(config);
    try {
      // Without a listener, node-postgres would throw the idle connection's error as an uncaught 'error'.
      await terminate(await databases.admin());
      expect(await databases.list()).toEqual(expect.any(Array));
    } finally {
      await databases.close();
    }
  });
});
