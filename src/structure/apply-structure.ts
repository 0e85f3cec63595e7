import type pg from 'pg';
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
 * Creates `objects`, statements that depend on nothing among each other (the indexes of
 * {@link independentIndexes}), at once over up to `sessions` sessions opened by `open`, each in a transaction of
 * its own under the canonical settings. Not atomic: a failure leaves the ones already made, so use it only
 * while building a database that a failure throws away. A {@link StructureApplyError} names the object.
 *
 * @example
 * const { indexes, rest } = independentIndexes(afterData);
 * await createObjectsAtOnce(() => connect(target, 'test'), indexes, 4);
 */
export async function createObjectsAtOnce(
  open: () => Promise<pg.Client>,
  objects: readonly StructureObject[],
  sessions: number,
): Promise<void> {
  const queue = [...objects];
  const opened: pg.Client[] = [];
  try {
    await Promise.all(
      Array.from({ length: Math.min(sessions, queue.length) }, async () => {
        const client = await open();
        opened.push(client);
        for (let object = queue.shift(); object; object = queue.shift()) {
          const current = object;
          await inTransaction(client, async () => {
            await client.query(CANONICAL_SETTINGS_SQL);
            await client.query(current.definition);
          }).catch((error: Error) => {
            queue.length = 0;
            throw new StructureApplyError(
              current.key,
              current.definition,
              `Creating ${current.key} failed: ${error.message}.`,
              { cause: error },
            );
          });
        }
      }),
    );
  } finally {
    await Promise.all(opened.map((client) => client.end().catch(() => undefined)));
  }
}
