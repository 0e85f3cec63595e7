import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { guardDestructive } from '../guard/production-guard.js';
import { listStamped, readMarker, writeMarkers, type TestMarker } from '../guard/test-marker.js';
import type { Logger } from '../util/logger.js';
import {
  cleanLeftovers,
  createDatabase,
  dropDatabase,
  findLeftovers,
  type CloneStrategy,
  type CreateDatabaseOptions,
  type DropLater,
} from './database-lifecycle.js';
import { leaseLock, runIsAlive, tryLock, unlock } from './template-locks.js';
import {
  cloneTemplate,
  dropTemplate,
  ensureTemplate,
  hasProjectTemplate,
  leaseTemplate,
  type BuildTemplateOptions,
  type TemplateBuilder,
  type TemplateLease,
} from './template-store.js';

export type { CreateDatabaseOptions } from './database-lifecycle.js';
export type { BuildTemplateOptions, TemplateBuilder, TemplateLease } from './template-store.js';

/** Options of {@link TwinDatabases.copy}. */
export interface CopyOptions {
  /** Marker kind of the copy. @default 'test' */
  kind?: 'test' | 'worker' | 'scratch';
  /** The run its marker names (whose run lock keeps it from other runs and `gc`). @default this process */
  run?: string;
  /** @default DEFAULT_CLONE_STRATEGY */
  strategy?: CloneStrategy;
  /** The template's fingerprint, for the copy's marker. @default none */
  fingerprint?: string;
}

/**
 * pgtwin's databases on one server (test, worker, scratch, work-in-progress builds, templates) and the one
 * way to create, stamp, rename into place, lease, lock, list and drop them. The global setup, `reset`, the
 * per-file opt-out copies, the CLI and `gc` go through it; the modules behind it (`database-lifecycle`,
 * `template-store`, `template-locks`) are not imported elsewhere (a lint rule keeps it so). Every method that
 * changes a database passes the production guard, and every database appears complete or not at all.
 *
 * @internal Not exported from the package; `gc()`, `provisionTestDatabase()` and `resetTestDatabase()` are its public faces.
 *
 * @example
 * ```ts
 * await using databases = await TwinDatabases.open(config);
 * await databases.copy('pgtwin_tpl_3f9a0c2b7d41', 'app_test_w2', { kind: 'worker' });
 * ```
 */
export class TwinDatabases implements AsyncDisposable {
  /** Set when the admin session ended under us (a server restart, `idle_session_timeout`, `pg_terminate_backend`). */
  private lost = false;
  /** Drops of replaced databases under way on sessions of their own (see {@link settle}). */
  private readonly drops: Promise<void>[] = [];
  /** The transaction ids this object's marker writes took, oldest first (see {@link markerWritesSince}). */
  private readonly markerWrites: bigint[] = [];

  private constructor(
    readonly config: ResolvedConfig,
    /** The admin session statements run on; replaced by a new one if it is lost. */
    private session: pg.ClientBase,
    private owned: boolean,
  ) {
    this.watch(session);
  }

  private watch(session: pg.ClientBase): void {
    const lose = () => {
      if (this.session === session) this.lost = true;
    };
    // A lost session must not crash the process (an 'error' without listener throws); the next call reconnects.
    session.on('error', lose);
    session.once('end', lose);
  }

  /**
   * The admin session, opened again if it was lost: a run holds this object from its setup to its teardown,
   * which must still drop what the run made although the server ended its connection in between.
   */
  async admin(): Promise<pg.ClientBase> {
    if (!this.lost) return this.session;
    const old = this.session;
    const wasOwned = this.owned;
    this.session = await connect(this.config.admin, 'admin');
    this.owned = true;
    this.lost = false;
    this.watch(this.session);
    if (wasOwned) await (old as pg.Client).end().catch(() => undefined);
    return this.session;
  }

  /** Opens an admin session on the test server, or works on `admin`, a session the caller keeps and closes. */
  static async open(config: ResolvedConfig, admin?: pg.ClientBase): Promise<TwinDatabases> {
    if (admin) return new TwinDatabases(config, admin, false);
    return new TwinDatabases(config, await connect(config.admin, 'admin'), true);
  }

  /** Runs `work` with databases opened for it, closed afterwards. */
  static async use<T>(config: ResolvedConfig, work: (databases: TwinDatabases) => Promise<T>): Promise<T> {
    const databases = await TwinDatabases.open(config);
    try {
      return await work(databases);
    } finally {
      await databases.close();
    }
  }

  /**
   * Runs `work` with databases of its own (an admin session of its own, so that several run at once: one
   * session runs one statement at a time), closed afterwards; their marker writes count as this object's
   * (see {@link markerWritesSince}).
   */
  async alongside<T>(work: (databases: TwinDatabases) => Promise<T>): Promise<T> {
    return TwinDatabases.use(this.config, async (databases) => {
      try {
        return await work(databases);
      } finally {
        this.markerWrites.push(...databases.markerWrites);
      }
    });
  }

  /**
   * Creates `name` complete or not at all (see `createDatabase`); returns its target for the test user. The
   * database it replaces is dropped while the caller goes on, by {@link settle}'s time.
   */
  async create(name: string, options: CreateDatabaseOptions): Promise<DatabaseTarget> {
    return createDatabase(this.config, await this.admin(), name, { dropLater: this.dropLater, ...options });
  }

  /**
   * Waits for the drops {@link create} and {@link ensureTemplate} left running (replaced databases and
   * superseded templates: a drop waits for a checkpoint, which the run's next copy or count need not wait
   * for). A drop that fails leaves its database to the next run's cleanup or `gc`.
   */
  async settle(): Promise<void> {
    while (this.drops.length > 0) await Promise.all(this.drops.splice(0));
  }

  private readonly dropLater: DropLater = (drop) => {
    const dropping = (async () => {
      const admin = await connect(this.config.admin, 'admin');
      try {
        await drop(admin);
      } finally {
        await admin.end();
      }
    })();
    this.drops.push(dropping.catch(() => undefined));
  };

  /** Creates `name` as a copy of `template`, stamped `kind`, replacing a pgtwin database no live run uses. */
  async copy(template: string, name: string, options: CopyOptions = {}): Promise<DatabaseTarget> {
    return cloneTemplate(this.config, template, name, { ...options, admin: await this.admin() });
  }

  /** Drops a pgtwin database (through the guard); nothing when it does not exist. */
  async drop(name: string): Promise<void> {
    return dropDatabase(this.config, await this.admin(), name);
  }

  /**
   * Renames the pgtwin database `name` to `to` (through the guard). Fails as PostgreSQL does when `name` is
   * gone (`3D000`) or has a session (`55006`), so a caller racing others for it can try another.
   */
  async rename(name: string, to: string): Promise<void> {
    const admin = await this.admin();
    await guardDestructive({ config: this.config, admin, database: name, operation: 'rename' });
    const id = (database: string) => admin.escapeIdentifier(database);
    await admin.query(`ALTER DATABASE ${id(name)} RENAME TO ${id(to)}`);
  }

  /** Drops `template` unless a run leases it; returns whether it did. */
  async dropTemplate(template: string): Promise<boolean> {
    return dropTemplate(this.config, template, { admin: await this.admin() });
  }

  /**
   * Runs `work` holding `template`'s lease exclusively, so no run starts using the template meanwhile (`gc`
   * drops it there). Returns `undefined` without running `work` while a run leases it.
   */
  async withUnleasedTemplate<T>(template: string, work: () => Promise<T>): Promise<T | undefined> {
    const admin = await this.admin();
    if (!(await tryLock(admin, leaseLock(template), 'exclusive'))) return undefined;
    try {
      return await work();
    } finally {
      await unlock(admin, leaseLock(template), 'exclusive');
    }
  }

  /** The marker of `database`: `null` when it exists unstamped, `undefined` when it does not exist. */
  async marker(database: string): Promise<TestMarker | null | undefined> {
    return readMarker(await this.admin(), database);
  }

  /** The OID of `database` (which a database rebuilt under the same name does not keep), `undefined` if none. */
  async oid(database: string): Promise<string | undefined> {
    const { rows } = await (
      await this.admin()
    ).query<{ oid: string }>('SELECT oid::text AS oid FROM pg_database WHERE datname = $1', [database]);
    return rows[0]?.oid;
  }

  /** Stamps `database` with `marker`. */
  stamp(database: string, marker: TestMarker): Promise<void> {
    return this.stampAll([[database, marker]]);
  }

  /** Stamps several databases in one transaction (see `writeMarkers`). */
  async stampAll(stamps: readonly (readonly [database: string, marker: TestMarker])[]): Promise<void> {
    const xid = await writeMarkers(await this.admin(), stamps);
    if (xid) this.markerWrites.push(BigInt(xid));
  }

  /**
   * The transaction ids this object's marker writes (stamps, a leased template's last use) took from `xmax`
   * on: they change no row and no catalog of a database, so a `QuietPoint` lists them as its own.
   */
  markerWritesSince(xmax: string): string[] {
    const from = BigInt(xmax);
    return this.markerWrites.filter((xid) => xid >= from).map(String);
  }

  /** Every stamped database on the server. */
  async list(): Promise<{ name: string; marker: TestMarker; isTemplate: boolean }[]> {
    return listStamped(await this.admin());
  }

  /** Databases crashed runs left (work in progress nobody holds, replaced ones not yet dropped). */
  async findLeftovers(): Promise<string[]> {
    return findLeftovers(await this.admin());
  }

  /** Drops what {@link findLeftovers} finds; returns the names dropped. */
  async cleanLeftovers(logger?: Logger): Promise<string[]> {
    return cleanLeftovers(this.config, await this.admin(), logger);
  }

  /** Whether the run `run` (`host:pid`) may still be alive (see `runIsAlive`). */
  async runIsAlive(run: string): Promise<boolean> {
    return runIsAlive(await this.admin(), run);
  }

  /**
   * Leases the template of `fingerprint`, building it with `build` when it is not published. The lease has a
   * session of its own: keep it for the whole run and release it at the end. With a fingerprint still being
   * read, the build starts at once (see `ensureTemplate`): for when a build is expected.
   */
  ensureTemplate(
    fingerprint: string | Promise<string>,
    build: TemplateBuilder,
    options?: BuildTemplateOptions,
  ): Promise<TemplateLease> {
    return this.noted(
      ensureTemplate(this.config, fingerprint, build, { dropLater: this.dropLater, ...options }),
    );
  }

  /** Whether a template of this project (its directory and production) is published on the server. */
  async hasProjectTemplate(): Promise<boolean> {
    return hasProjectTemplate(this.config, await this.admin());
  }

  /** Leases the published template of `fingerprint` without building it; `undefined` when there is none. */
  leaseTemplate(fingerprint: string): Promise<TemplateLease | undefined> {
    return this.noted(leaseTemplate(this.config, fingerprint));
  }

  /** `leasing`, its marker writes noted (see {@link markerWritesSince}). */
  private async noted<T extends TemplateLease | undefined>(leasing: Promise<T>): Promise<T> {
    const lease = await leasing;
    for (const xid of lease?.markerWrites ?? []) this.markerWrites.push(BigInt(xid));
    return lease;
  }

  /** Waits for the drops under way ({@link settle}), then closes the admin session when this object opened it. */
  async close(): Promise<void> {
    await this.settle();
    if (this.owned) await (this.session as pg.Client).end().catch(() => undefined);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
