import { createHash, randomBytes } from 'node:crypto';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { ProductionGuardError } from '../errors.js';
import { currentRun } from '../guard/test-marker.js';
import { TwinDatabases } from '../provision/twin-databases.js';
import { createLogger, type Logger } from '../util/logger.js';
import { markOptedOut } from './clean-run-watch.js';
import {
  targetFields,
  workerConfig,
  workerTestTarget,
  type TargetFields,
  type TwinHandoff,
} from './worker-handoff.js';

/** Where a {@link ReadyCopies} pool copies from and whose databases it makes. */
export interface ReadyCopiesOptions {
  config: ResolvedConfig;
  /** The template every copy is made from. */
  template: string;
  /** The run whose marker the copies carry (its run lock keeps them from `gc` while it lives). */
  run: string;
  /** The worker's database: copies are named after it, and the ready ones are this worker's pool. */
  database: string;
  /** The run's test database, whose marker records that a test opted out. @default `database` */
  testDatabase?: string;
  /** @default config.isolation.readyCopies */
  size?: number;
  logger?: Logger;
}

/** A copy handed to an opted-out test or block. */
export interface TakenCopy {
  readonly target: TargetFields;
  /** Taken from the pool (a rename), rather than created when asked. */
  readonly ready: boolean;
}

/**
 * Fresh copies of the template for tests that opt out of isolation, with a pool of copies made ahead of
 * time. The ready copies live on the server, stamped as scratch databases of the run and named after the
 * worker's database, so they outlast the process of one test file (a runner may start one per file) and the
 * worker's next file takes one with a rename. Nothing is created until a worker first takes a copy: a run
 * that never opts out pays nothing. Each take starts a background refill; {@link settle} waits for it (and
 * for the drops of released copies) before the process may end; {@link dropRunCopies} removes what is left
 * when the run ends.
 *
 * @example
 * const copies = new ReadyCopies({ config, template, run, database: 'app_test_w1' });
 * const { target } = await copies.take();
 * copies.release(target.database);
 * await copies.settle();
 */
export class ReadyCopies {
  private readonly options: Required<ReadyCopiesOptions>;
  private readonly prefix: string;
  private refilling: Promise<void> | undefined;
  private readonly pending = new Set<Promise<void>>();
  /** The admin session takes run on: opened by the first, kept until {@link settle}, so a take connects once. */
  private session: Promise<TwinDatabases> | undefined;
  private optedOutMarked = false;

  constructor(options: ReadyCopiesOptions) {
    this.options = {
      ...options,
      testDatabase: options.testDatabase ?? options.database,
      size: options.size ?? options.config.isolation.readyCopies,
      logger: options.logger ?? createLogger({ debug: options.config.debug }),
    };
    this.prefix = readyPrefix(options.database, options.template);
  }

  /** The pool of this test worker, from the global setup's handoff. */
  static async forWorker(handoff: TwinHandoff): Promise<ReadyCopies> {
    return new ReadyCopies({
      config: await workerConfig(handoff),
      template: handoff.template,
      run: handoff.run ?? currentRun(),
      database: workerTestTarget(handoff).database,
      testDatabase: handoff.test.database,
    });
  }

  /**
   * A fresh copy of the template under a name of its own: a ready one renamed when the pool has one (waiting
   * for a refill already under way rather than starting a second `CREATE DATABASE`), else created now.
   */
  async take(): Promise<TakenCopy> {
    const { config, template, run } = this.options;
    const name = `${this.options.database.slice(0, 40)}_copy_${process.pid}_${randomBytes(3).toString('hex')}`;
    this.session ??= TwinDatabases.open(config);
    let ready: boolean;
    try {
      const databases = await this.session;
      if (!this.optedOutMarked) {
        // The run's test database cannot be left "clean" for the next run: these tests commit.
        await markOptedOut(databases, this.options.testDatabase);
        this.optedOutMarked = true;
      }
      ready = await this.claim(databases, name);
      if (!ready && this.refilling) {
        await this.refilling;
        ready = await this.claim(databases, name);
      }
      if (!ready) await databases.copy(template, name, { kind: 'scratch', run });
    } catch (error) {
      // The next take starts on a new session, whatever state this one was left in.
      await this.closeSession();
      throw error;
    }
    this.refill();
    return { target: targetFields(config.test.withDatabase(name)), ready };
  }

  /** Drops a taken copy; {@link settle} also waits for it, so it may run in the background. Never rejects. */
  release(database: string): Promise<void> {
    const drop = TwinDatabases.use(this.options.config, (databases) => databases.drop(database)).catch(
      (error: Error) => this.options.logger.debug(`could not drop ${database}: ${error.message}`),
    );
    this.track(drop);
    return drop;
  }

  /** Waits for the refill and the drops under way, and closes the session: call it before the process ends. */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
    await this.closeSession();
  }

  private async closeSession(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await (await session?.catch(() => undefined))?.close();
  }

  /** Renames one of this pool's ready copies to `name`; false when there is none. */
  private async claim(databases: TwinDatabases, name: string): Promise<boolean> {
    for (const database of await this.readyNames(databases)) {
      try {
        await databases.rename(database, name);
        return true;
      } catch (error) {
        // Taken by another process of the same worker a moment ago (gone, or being connected to): next one.
        const gone = error instanceof ProductionGuardError && error.reason === 'missing';
        if (!gone && !['3D000', '55006'].includes((error as { code?: string }).code ?? '')) throw error;
      }
    }
    return false;
  }

  /** The pool's copies on the server: named after this worker and template, stamped by this run. */
  private async readyNames(databases: TwinDatabases): Promise<string[]> {
    return (await databases.list())
      .filter(
        ({ name, marker }) =>
          name.startsWith(this.prefix) && marker.kind === 'scratch' && marker.run === this.options.run,
      )
      .map(({ name }) => name);
  }

  private refill(): void {
    if (this.options.size === 0 || this.refilling) return;
    const { config, template, run, size, logger } = this.options;
    this.refilling = TwinDatabases.use(config, async (databases) => {
      while ((await this.readyNames(databases)).length < size) {
        const name = `${this.prefix}${randomBytes(4).toString('hex')}`;
        await databases.copy(template, name, { kind: 'scratch', run });
      }
    })
      .catch((error: Error) => logger.debug(`could not refill the ready copies: ${error.message}`))
      .finally(() => (this.refilling = undefined));
    this.track(this.refilling);
  }

  private track(work: Promise<void>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }
}

/**
 * Drops every copy the run `run` made for opted-out tests that is still there: the pools' ready copies, and
 * copies of a test file whose worker was killed. The global teardown calls it; `gc` does the same for runs
 * that died. Returns the names dropped.
 */
export async function dropRunCopies(databases: TwinDatabases, run: string): Promise<string[]> {
  const dropped: string[] = [];
  for (const { name, marker } of await databases.list()) {
    if (marker.kind !== 'scratch' || marker.run !== run) continue;
    await databases.drop(name);
    dropped.push(name);
  }
  return dropped;
}

/**
 * Ready copies of `database`'s pool for `template`: `<database, cut to 30>_ready_<hash of both>_`, so two workers
 * whose names differ past the cut, or an older template's copies, never share a pool.
 */
function readyPrefix(database: string, template: string): string {
  const tag = createHash('sha256')
    .update(JSON.stringify([database, template]))
    .digest('hex')
    .slice(0, 8);
  return `${database.slice(0, 30)}_ready_${tag}_`;
}
