import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { provisionTestDatabase, type DatabaseTarget } from 'pgtwin';
import { ProviderError } from '../../src/errors.js';
import { findFreePort } from '../../src/provider/find-free-port.js';
import { SERVER_USER_NAME } from '../../src/provider/server-user.js';
import { EmbeddedServer } from '../../src/provider/embedded-server.js';
import { probePostgres } from '../../src/provider/probe-postgres.js';
import { startServer } from '../../src/provider/start-server.js';
import { withServer } from '../../src/provider/with-server.js';
import { SERVER, testConfig } from '../helpers/config.js';

// One data directory for the file: initdb runs once, every later start reuses the cluster.
const dataDir = mkdtempSync(path.join(tmpdir(), 'pgtwin-provider-'));
const embedded = new EmbeddedServer({ dataDir });

afterAll(async () => {
  await embedded.remove();
});

/** A port nothing listens on: free a moment ago, and nothing here binds it. */
const closedPort = await findFreePort();

async function query(target: DatabaseTarget, sql: string): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client(target.clientConfig());
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('startServer with the configured server', () => {
  it("'server' uses config.admin and config.test as they are, and stop() leaves the server running", async () => {
    const config = await testConfig({ provider: 'server' });
    const server = await startServer(config);
    expect(server.provider).toBe('server');
    expect(server.admin).toBe(config.admin);
    expect(server.test).toBe(config.test);
    expect(server.reason).toBe(
      `configured in options, using ${SERVER.host}:${SERVER.port} (test.host in options/test.port in options)`,
    );
    await server.stop();
    expect((await probePostgres(SERVER.host, SERVER.port)).answered).toBe('postgres');
  });

  it("'auto' chooses the configured server when PostgreSQL answers there, and says so in one line", async () => {
    const lines: string[] = [];
    const logger = {
      info: (line: string) => lines.push(line),
      debug: () => undefined,
      warn: () => undefined,
    };
    const config = await testConfig({ provider: 'auto' });
    const server = await startServer(config, { logger });
    expect(server.provider).toBe('server');
    expect(lines).toEqual([
      `provider server: PostgreSQL answers at ${SERVER.host}:${SERVER.port} (test.host in options/test.port in options); ` +
        "provider auto would start an embedded server if it did not (to use only the configured server, set provider: 'server' or PGTWIN_PROVIDER=server)",
    ]);
    // Production is configured on that same server in the test configuration.
    expect(server.production).toBe(config.production);
    expect(await query(server.admin, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });
});

describe('startServer with an embedded server', () => {
  it("'auto' falls back to embedded when nothing answers, provisions and queries there, and stop() shuts it down", async () => {
    const config = await testConfig({
      provider: 'auto',
      test: { port: closedPort, database: 'twin_db', user: 'twin_user', password: 'twin-pw' },
      admin: { port: closedPort },
      embedded: { dataDir },
    });
    const server = await startServer(config);
    expect(server.provider).toBe('embedded');
    expect(server.reason).toBe(
      `nothing (ECONNREFUSED) answers at ${SERVER.host}:${closedPort} (test.host in options/test.port in options), ` +
        "so provider auto starts an embedded PostgreSQL instead (to use only the configured server, set provider: 'server' or PGTWIN_PROVIDER=server)",
    );
    expect(server.admin).toMatchObject({ host: '127.0.0.1', database: 'postgres', user: 'postgres' });
    expect(server.admin.port).not.toBe(closedPort);
    expect(server.test).toMatchObject({ host: '127.0.0.1', port: server.admin.port, database: 'twin_db' });
    expect(server.production).toBeUndefined();

    // The pipeline's path: provision through the config re-pointed at the started server.
    const onServer = withServer(config, server);
    const result = await provisionTestDatabase(onServer);
    expect(result).toMatchObject({ databaseCreated: true, roleCreated: true });
    expect(await query(server.test, 'SELECT current_database() AS db, current_user AS who')).toEqual([
      { db: 'twin_db', who: 'twin_user' },
    ]);
    expect(await query(server.admin, 'SHOW server_version_num')).toEqual([
      { server_version_num: expect.stringMatching(/^18/) },
    ]);

    await server.stop();
    expect(await probePostgres('127.0.0.1', server.admin.port)).toMatchObject({ answered: 'nothing' });
  });

  it.runIf(process.getuid?.() === 0)(
    'runs the server as the unprivileged system user pgtwin, from a cluster in /var/cache/pgtwin it owns, when run as root',
    () => {
      const uid = Number(execFileSync('id', ['-u', SERVER_USER_NAME], { encoding: 'utf8' }).trim());
      expect(embedded.clusterDir.startsWith('/var/cache/pgtwin/clusters/')).toBe(true);
      expect(statSync(embedded.clusterDir).uid).toBe(uid);
      // The data directory stays root's; its pgdata is a link to the cluster.
      expect(lstatSync(path.join(dataDir, 'pgdata')).isSymbolicLink()).toBe(true);
      expect(statSync(path.join(dataDir, 'pgdata')).uid).toBe(uid);
    },
  );

  it.runIf(process.getuid?.() === 0)(
    'deletes, as root, the clusters in the cache whose data directory is gone, and keeps the others',
    async () => {
      const clusters = path.dirname(path.dirname(embedded.clusterDir));
      const gone = path.join(tmpdir(), `pgtwin-deleted-project-${process.pid}`);
      const orphan = path.join(clusters, `orphan-${process.pid}`);
      const unknown = path.join(clusters, `unrecorded-${process.pid}`);
      mkdirSync(path.join(orphan, 'pgdata'), { recursive: true });
      writeFileSync(path.join(orphan, 'data-dir'), `${gone}\n`);
      mkdirSync(unknown, { recursive: true });
      try {
        const server = await embedded.start();
        await server.stop();
        expect(existsSync(orphan)).toBe(false);
        // Made by an older pgtwin, without an owner record: nothing says it is unused.
        expect(existsSync(unknown)).toBe(true);
        expect(readFileSync(path.join(path.dirname(embedded.clusterDir), 'data-dir'), 'utf8')).toBe(
          `${dataDir}\n`,
        );
        expect(existsSync(embedded.clusterDir)).toBe(true);
      } finally {
        rmSync(orphan, { recursive: true, force: true });
        rmSync(unknown, { recursive: true, force: true });
      }
    },
  );

  it('picks a free port when embedded.port is 0, and rejects a busy fixed port naming the setting', async () => {
    const server = await embedded.start();
    try {
      expect(server.port).not.toBe(SERVER.port);
      expect(await probePostgres('127.0.0.1', server.port)).toEqual({ answered: 'postgres' });
    } finally {
      await server.stop();
    }
    const busy = new EmbeddedServer({ dataDir, port: SERVER.port }).start();
    await expect(busy).rejects.toThrow(ProviderError);
    await expect(busy).rejects.toMatchObject({
      provider: 'embedded',
      reason: 'port-in-use',
      message: expect.stringContaining('Set embedded.port to another port, or to 0'),
    });
  });

  it('in persistent mode leaves the server running, and the next start reuses it (same port and pid)', async () => {
    const config = await testConfig({ provider: 'embedded', embedded: { dataDir, persistent: true } });
    const first = await startServer(config);
    await first.stop();
    const firstState = await new EmbeddedServer({ dataDir, persistent: true }).start();
    expect(firstState.reused).toBe(true);
    expect(await probePostgres('127.0.0.1', first.admin.port)).toEqual({ answered: 'postgres' });

    const second = await startServer(config);
    expect(second.admin.port).toBe(first.admin.port);
    const again = await new EmbeddedServer({ dataDir, persistent: true }).start();
    expect(again.pid).toBe(firstState.pid);
    expect(await query(second.admin, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);

    expect(await embedded.stopRunning()).toBe(true);
    expect(await probePostgres('127.0.0.1', first.admin.port)).toMatchObject({ answered: 'nothing' });
    expect(await embedded.stopRunning()).toBe(false);
  });
});

describe('withServer', () => {
  it('returns a frozen copy pointing test and admin at the started server, leaving the config as it was', async () => {
    const config = await testConfig({ provider: 'embedded', embedded: { dataDir } });
    await using server = await startServer(config);
    const onServer = withServer(config, server);
    expect(Object.isFrozen(onServer)).toBe(true);
    expect(onServer).toMatchObject({ provider: 'embedded', test: server.test, admin: server.admin });
    expect(onServer.production).toBe(config.production);
    expect(onServer.sources['test.port']).toBe('provider embedded');
    expect(config.test.port).toBe(SERVER.port);
    expect(config.sources['test.port']).toBe('options');
  });
});
