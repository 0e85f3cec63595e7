import { hostname } from 'node:os';
import type pg from 'pg';

const PREFIX = 'pgtwin:';

/** What pgtwin stamps on every database it creates, as the database's comment. */
export interface TestMarker {
  kind: 'test' | 'template' | 'worker' | 'scratch';
  /** The run that created it: `host:pid`. */
  run: string;
  /** ISO time of creation. */
  created: string;
  /** Hash of the schema scripts last applied by `SchemaSetup`, so applying the same ones again is skipped. */
  scripts?: string;
}

/** A marker for a database this process is about to create. */
export function newMarker(kind: TestMarker['kind']): TestMarker {
  return { kind, run: `${hostname()}:${process.pid}`, created: new Date().toISOString() };
}

/** Stamps `database` as a pgtwin database (`COMMENT ON DATABASE`, readable without connecting to it). */
export async function writeMarker(
  client: pg.ClientBase,
  database: string,
  marker: TestMarker,
): Promise<void> {
  const text = PREFIX + JSON.stringify(marker);
  await client.query(
    `COMMENT ON DATABASE ${client.escapeIdentifier(database)} IS ${client.escapeLiteral(text)}`,
  );
}

/**
 * The marker of `database` on the server `client` is connected to: `null` when the database exists
 * without one, `undefined` when there is no such database.
 */
export async function readMarker(
  client: pg.ClientBase,
  database: string,
): Promise<TestMarker | null | undefined> {
  const { rows } = await client.query<{ comment: string | null }>(
    `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`,
    [database],
  );
  if (rows.length === 0) return undefined;
  const comment = rows[0]!.comment;
  if (!comment?.startsWith(PREFIX)) return null;
  try {
    return JSON.parse(comment.slice(PREFIX.length)) as TestMarker;
  } catch {
    return null;
  }
}
