import type pg from 'pg';
import { isOutOfConnections } from '../connection/connect.js';
import { inTransaction } from '../connection/in-transaction.js';
import { StructureApplyError } from '../errors.js';
import { CANONICAL_SETTINGS_SQL, withClient, type Queryable } from './queryable.js';
import type { StructureObject, StructureSnapshot } from './structure-snapshot.js';

/** Options of {@link applyStructure}. */
export interface ApplyStructureOptions {
  /**
   * Drop the snapshot's schemas (with everything in them, `CASCADE`) before creating them, so a
   * re-clone replaces an earlier one. Other schemas of the target are kept, but objects in them that
   * depend on a dropped object (a foreign key to `public.projects`, a view) go with it.
   * @default false
   */
  replace?: boolean;
}

/**
 * Creates every object of `snapshot` in the target, in one transaction: on any failure nothing is
 * changed and a {@link StructureApplyError} names the object and statement. Objects are owned by the
 * connecting role; no privileges are granted. Needs no connection to the database the snapshot came
 * from, so a snapshot read from JSON applies the same.
 *
 * @example
 * ```ts
 * const snapshot = await readStructure(production, { schemas: ['public', 'project_*'] });
 * await applyStructure(testClient, snapshot, { replace: true });
 * ```
 */
export function applyStructure(
  target: Queryable,
  snapshot: StructureSnapshot,
  options: ApplyStructureOptions = {},
): Promise<void> {
  return withClient(target, (client) =>
    inTransaction(client, (tx) => createStructureObjects(tx, snapshot, options)),
  );
}

/**
 * The work of {@link applyStructure} inside the caller's transaction, so a restore can create the structure
 * and load data atomically. All objects go in one round trip; only when that fails are they replayed one by
 * one (inside a savepoint) to name the failing object.
 */
export async function createStructureObjects(
  client: pg.ClientBase,
  snapshot: StructureSnapshot,
  options: ApplyStructureOptions = {},
): Promise<void> {
  await client.query(CANONICAL_SETTINGS_SQL);
  // Function bodies may name tables created later, as in pg_dump output.
  await client.query("SELECT pg_catalog.set_config('check_function_bodies', 'off', true)");
  const drops = options.replace
    ? snapshot.schemas.map((schema) => `DROP SCHEMA IF EXISTS ${client.escapeIdentifier(schema)} CASCADE`)
    : [];
  const script = [...drops, ...snapshot.objects.map((object) => object.definition)].join(';\n');
  await client.query('SAVEPOINT pgtwin_structure');
  try {
    if (script !== '') await client.query(script);
    await client.query('RELEASE SAVEPOINT pgtwin_structure');
    return;
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT pgtwin_structure');
  }
  for (const drop of drops) await client.query(drop);
  for (const object of snapshot.objects) {
    await client.query(object.definition).catch((error: Error) => {
      const hint = /already exists/.test(error.message)
        ? ' Pass `replace: true` to drop the schemas first.'
        : '';
      throw new StructureApplyError(
        object.key,
        object.definition,
        `Creating ${object.key} failed: ${error.message}. Nothing was changed.${hint}`,
        { cause: error },
      );
    });
  }
  // Every object succeeded alone but the batch failed: name the batch rather than claim success.
  throw new StructureApplyError(
    'structure',
    script,
    'Creating the structure in one batch failed although each object succeeds alone. Nothing was changed; report this to pgtwin.',
  );
}

/**
 * Creates objects that depend on nothing among each other (the indexes of {@link independentIndexes}), handed to
 * it as they become ready ({@link add}: a table's indexes once its rows are in), at once over up to `sessions`
 * sessions opened by `open` when work comes, each object in a transaction of its own under the canonical
 * settings; GIN and GiST indexes, the slowest to build, first. Not atomic: a failure leaves the ones already
 * made, so use it only while building a database that a failure throws away. {@link finish} waits for all
 * and closes the sessions; a {@link StructureApplyError} names the object that failed.
 *
 * @example
 * const creator = new ObjectCreator(() => connect(target, 'test'), 4);
 * creator.add(indexesOf('public.prompts'));
 * await creator.finish();
 */
export class ObjectCreator {
  private readonly queue: StructureObject[] = [];
  private readonly idle: pg.Client[] = [];
  private readonly opened: pg.Client[] = [];
  private readonly workers: Promise<void>[] = [];
  private running = 0;
  private failure: unknown;
  /** A session refused for want of a connection slot: the others build its share (see {@link work}). */
  private refused: unknown;

  constructor(
    private readonly open: () => Promise<pg.Client>,
    private sessions: number,
  ) {}

  /** Opens at most `sessions` from now on (at least one), e.g. fewer for small tables. */
  limit(sessions: number): void {
    this.sessions = Math.max(1, sessions);
  }

  add(objects: readonly StructureObject[]): void {
    if (this.failure !== undefined) return;
    this.queue.push(...objects);
    this.queue.sort((a, b) => slowness(b) - slowness(a));
    while (this.running < this.sessions && this.running < this.queue.length) {
      this.running++;
      const worker = this.work();
      worker.catch(() => undefined);
      this.workers.push(worker);
    }
  }

  /** Waits until every object added is created (or one failed, then throws), and closes the sessions. */
  async finish(): Promise<void> {
    try {
      while (this.workers.length > 0) await Promise.all(this.workers.splice(0));
      // Every session was refused: nothing could build what is left.
      if (this.queue.length > 0) throw this.refused;
    } finally {
      await Promise.all(this.opened.map((client) => client.end().catch(() => undefined)));
    }
  }

  private async work(): Promise<void> {
    let client: pg.Client;
    try {
      client = this.idle.pop() ?? (await this.connect());
    } catch (error) {
      // The server has no slot for another session: go on with one another worker left, or leave the queue to
      // the workers still running.
      const idle = isOutOfConnections(error) ? this.idle.pop() : undefined;
      if (!idle) {
        this.running--;
        if (isOutOfConnections(error) && this.running > 0) {
          this.refused = error;
          return;
        }
        this.failure ??= error;
        this.queue.length = 0;
        throw error;
      }
      client = idle;
    }
    try {
      for (let object = this.queue.shift(); object; object = this.queue.shift()) {
        const current = object;
        const session = client;
        await inTransaction(session, async () => {
          await session.query(CANONICAL_SETTINGS_SQL);
          await session.query(current.definition);
        }).catch((error: Error & { detail?: string }) => {
          // The detail says which rows: "Key (id)=(1) is duplicated."
          const detail = error.detail ? ` (${error.detail})` : '';
          throw new StructureApplyError(
            current.key,
            current.definition,
            `Creating ${current.key} failed: ${error.message}${detail}.`,
            { cause: error },
          );
        });
      }
    } catch (error) {
      this.failure ??= error;
      this.queue.length = 0;
      throw error;
    } finally {
      this.idle.push(client);
      this.running--;
    }
  }

  private async connect(): Promise<pg.Client> {
    const client = await this.open();
    this.opened.push(client);
    return client;
  }
}

/** GIN and GiST indexes take longest to build: started first, so they do not finish last. */
function slowness(object: StructureObject): number {
  return / USING (?:gin|gist) /.test(object.definition) ? 1 : 0;
}
