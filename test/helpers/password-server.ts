import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../src/provider/find-free-port.js';

const BIN = '/usr/lib/postgresql/15/bin';

/** A PostgreSQL cluster of its own that asks every login for a password (scram-sha-256). */
export interface PasswordServer {
  host: string;
  port: number;
  /** The superuser `postgres`'s password. */
  password: string;
  stop(): void;
}

/**
 * Starts a throwaway cluster with `password_encryption=scram-sha-256` and scram in pg_hba, as the OS user
 * `postgres` (the suite runs as root), on a free port; `stop()` stops it `-m immediate` and deletes it.
 */
export async function startPasswordServer(): Promise<PasswordServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgtwin-scram-'));
  chmodSync(dir, 0o755);
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const password = 'scram-Admin-729';
  const pwfile = path.join(dir, 'pw');
  writeFileSync(pwfile, `${password}\n`);
  chownSync(pwfile, uid, gid);
  const data = path.join(dir, 'data');
  const asPostgres = (command: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', path.join(BIN, command), ...args], { stdio: 'pipe' });
  asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`]);
  const port = await findFreePort();
  asPostgres('pg_ctl', [
    '-D',
    data,
    '-w',
    '-l',
    path.join(dir, 'log'),
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c password_encryption=scram-sha-256 -c fsync=off`,
    'start',
  ]);
  return {
    host: '127.0.0.1',
    port,
    password,
    stop() {
      try {
        asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
