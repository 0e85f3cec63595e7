import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, DBConnector, resolveConfig } from 'pgtwin';
import { connect } from '../../src/connection/connect.js';
import { targetFields, workerConfig, workerEnvironment } from '../../src/pipeline/worker-handoff.js';
import { findFreePort } from '../../src/provider/find-free-port.js';
import { SERVER_URL } from '../helpers/databases.js';

const BIN = '/usr/lib/postgresql/15/bin';
let dir: string;
let port: number;
let rootCert: string;

/** A throwaway cluster with ssl=on and a self-signed certificate for 127.0.0.1 only (not "localhost"). */
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'pgtwin-tls-'));
  const data = path.join(dir, 'data');
  const asPostgres = (args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'pipe' });
  chownSync(
    dir,
    Number(execFileSync('id', ['-u', 'postgres']).toString()),
    Number(execFileSync('id', ['-g', 'postgres']).toString()),
  );
  asPostgres([`${BIN}/initdb`, '-D', data, '-U', 'postgres', '--auth=trust', '--no-sync']);
  asPostgres([
    'openssl',
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=pgtwin-tls-test',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    path.join(data, 'server.key'),
    '-out',
    path.join(data, 'server.crt'),
  ]);
  rootCert = path.join(dir, 'root.crt');
  writeFileSync(rootCert, execFileSync('cat', [path.join(data, 'server.crt')]));
  return findFreePort().then((free) => {
    port = free;
    asPostgres([
      `${BIN}/pg_ctl`,
      '-D',
      data,
      '-l',
      path.join(dir, 'log'),
      '-w',
      '-o',
      `-p ${port} -c ssl=on -c listen_addresses='127.0.0.1,::1' -c unix_socket_directories='${dir}' -c fsync=off`,
      'start',
    ]);
  });
}, 60_000);

afterAll(() => {
  try {
    execFileSync(
      'runuser',
      ['-u', 'postgres', '--', `${BIN}/pg_ctl`, '-D', path.join(dir, 'data'), '-m', 'immediate', 'stop'],
      { stdio: 'pipe' },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function encrypted(url: string, host?: string): Promise<boolean> {
  const config = await resolveConfig({
    rootDir: dir,
    configFile: false,
    envFiles: [],
    env: { DATABASE_URL: url },
    ...(host ? { production: { host } } : {}),
  });
  const client = await connect(config.production, 'production');
  try {
    const { rows } = await client.query<{ ssl: boolean }>(
      'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    return rows[0]!.ssl;
  } finally {
    await client.end();
  }
}

const url = (query = '', host = '127.0.0.1') => `postgres://postgres@${host}:${port}/postgres${query}`;

describe('TLS', () => {
  it('encrypts the session for ?sslmode=require, and not without it', async () => {
    expect(await encrypted(url('?sslmode=require'))).toBe(true);
    expect(await encrypted(url())).toBe(false);
  });

  it('encrypts a pooled session for PGSSLMODE=require, read through the resolver', async () => {
    const config = await resolveConfig({
      rootDir: dir,
      configFile: false,
      envFiles: [],
      env: { DATABASE_URL: url(), PGSSLMODE: 'require' },
    });
    await using connector = new DBConnector({ config });
    const { rows } = await connector.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(rows[0]!.ssl).toBe(true);
  });

  it('verify-full accepts the right root certificate and host, and refuses a wrong host name clearly', async () => {
    expect(await encrypted(url(`?sslmode=verify-full&sslrootcert=${rootCert}`))).toBe(true);
    const wrongHost = await encrypted(url(`?sslmode=verify-full&sslrootcert=${rootCert}`, 'localhost')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(wrongHost).toBeInstanceOf(ConnectionError);
    expect((wrongHost as Error).message).toMatch(/TLS certificate is not issued for "localhost"/);
    // verify-ca checks the chain only.
    expect(await encrypted(url(`?sslmode=verify-ca&sslrootcert=${rootCert}`, 'localhost'))).toBe(true);
    const unknownCa = await encrypted(url('?sslmode=verify-full')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((unknownCa as Error).message).toMatch(/could not be verified .*Point sslrootcert/);
  });

  it('prefer falls back to an unencrypted session on a server without TLS; require there says what to change', async () => {
    const plain = new URL(SERVER_URL);
    plain.searchParams.set('sslmode', 'prefer');
    expect(await encrypted(plain.toString())).toBe(false);
    expect(await encrypted(url('?sslmode=prefer'))).toBe(true);
    plain.searchParams.set('sslmode', 'require');
    const refused = await encrypted(plain.toString()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((refused as Error).message).toMatch(/does not offer TLS/);
  });

  it('hands the TLS settings to test workers: the fields and TEST_DATABASE_URL keep them', async () => {
    const config = await resolveConfig({
      rootDir: dir,
      configFile: false,
      envFiles: [],
      env: { TEST_DATABASE_URL: url(`?sslmode=verify-full&sslrootcert=${rootCert}`) },
    });
    const fields = JSON.parse(JSON.stringify(targetFields(config.test))) as ReturnType<typeof targetFields>;
    const environment = workerEnvironment(fields);
    expect(new URL(environment.TEST_DATABASE_URL!).searchParams.get('sslmode')).toBe('verify-full');
    expect(new URL(environment.TEST_DATABASE_URL!).searchParams.get('sslrootcert')).toBe(rootCert);
    const worker = await workerConfig({
      rootDir: dir,
      options: { configFile: false, envFiles: [], env: {} },
      test: fields,
      admin: targetFields(config.admin),
      template: 'x',
    });
    expect(worker.test.ssl).toEqual({ mode: 'verify-full', rootCert });
    const client = await connect(worker.test, 'test');
    const { rows } = await client.query<{ ssl: boolean }>(
      'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    await client.end();
    expect(rows[0]!.ssl).toBe(true);
  });
});
