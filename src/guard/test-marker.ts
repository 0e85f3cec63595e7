import { hostname } from 'node:os';
import type pg from 'pg';
import type { QuietPoint } from '../connection/quiet-since.js';

const PREFIX = 'pgtwin:';

/** Prefix of databases pgtwin is still creating; renamed into place once complete and stamped. */
export const WIP_PREFIX = 'pgtwin_wip_';
/** Prefix of databases pgtwin replaced and is about to drop. */
export const TRASH_PREFIX = 'pgtwin_trash_';

/** What pgtwin stamps on every database it creates, as the database's comment. */
export interface TestMarker {
  /**
   * `test`, `worker`, `scratch` and `template` are databases in place; `wip` one still being created
   * (under a `pgtwin_wip_` name), `trash` one replaced and about to be dropped.
   */
  kind: 'test' | 'template' | 'worker' | 'scratch' | 'wip' | 'trash';
  /** The run that created it: `host:pid` of the process holding the run lock. */
  run: string;
  /** ISO time of creation. */
  created: string;
  /** Hash of the schema scripts last applied by `SchemaSetup`, so applying the same ones again is skipped. */
  scripts?: string;
  /** A test or worker database: the fingerprint of the template it was copied from. */
  fingerprint?: string;
  /**
   * A test or worker database: set by the global teardown when the run committed nothing outside the tests, so the
   * database still equals the template of {@link fingerprint} and the next run may use it without copying.
   * Cleared when a run starts using it.
   */
  clean?: boolean;
  /**
   * With `clean`: the database's rows and catalogs when it was stamped clean, so the next run can prove nothing
   * was committed between the runs (a `LeakBaseline`).
   */
  cleanBaseline?: {
    xid: string;
    tables: Record<string, number>;
    catalogs: Record<string, number>;
    /** When the state was read with no transaction running: the next run may prove it still holds in one statement. */
    quiet?: QuietPoint;
  };
  /**
   * With `clean`: the sequences' states the run left (those of the template's copy). `nextval` is not rolled
   * back and may take no transaction id, so a sequence moved between runs shows in neither proof of
   * `cleanBaseline`: the next run that keeps the database puts them back to these.
   */
  cleanSequences?: { name: string; lastValue: string; isCalled: boolean }[];
  /** A test database: a test file of the current run opted out of isolation (the run cannot end clean). */
  optedOut?: boolean;
  /**
   * A test database: the rows and catalogs of a fresh copy of the template (`template`: its database OID),
   * counted when the run that copied it began, so a later copy of the same template need not count them again.
   */
  copyCounts?: { template: string; tables: Record<string, number>; catalogs: Record<string, number> };
}

/** The marker of a published template: which fingerprint it holds and when a run last used it. */
export interface TemplateMarker extends TestMarker {
  kind: 'template';
  /** The full fingerprint (the name carries its first 12 hex digits). */
  fingerprint: string;
  /** Which project's twin it is (its directory and production), so a newer build replaces older ones. */
  lineage?: string;
  /** ISO time a run last reused it; `gc` ages templates from here. */
  used?: string;
}

/** A marker for a database this process is about to create; `run` defaults to this process. */
export function newMarker(kind: TestMarker['kind'], run = currentRun()): TestMarker {
  return { kind, run, created: new Date().toISOString() };
}

/** This process's run id, as markers record it: `host:pid`. */
export function currentRun(): string {
  return `${hostname()}:${process.pid}`;
}

/** The comment text that stamps a database with `marker`. */
export function markerComment(marker: TestMarker): string {
  return PREFIX + JSON.stringify(marker);
}

/** The marker a database comment carries: `null` for no comment, another comment or a damaged marker. */
export function parseMarker(comment: string | null | undefined): TestMarker | null {
  if (!comment?.startsWith(PREFIX)) return null;
  try {
    const marker = JSON.parse(comment.slice(PREFIX.length)) as TestMarker;
    return marker && typeof marker === 'object' && typeof marker.kind === 'string' ? marker : null;
  } catch {
    return null;
  }
}

/**
 * Stamps `database` as a pgtwin database (`COMMENT ON DATABASE`, readable without connecting to it); returns
 * the transaction id the write took when it had its transaction to itself (`undefined` inside a transaction
 * `client` had open, whose other statements may have changed anything).
 */
export function writeMarker(
  client: pg.ClientBase,
  database: string,
  marker: TestMarker,
): Promise<string | undefined> {
  return writeMarkers(client, [[database, marker]]);
}

/**
 * {@link writeMarker} for several databases in one transaction: every stamp has the same transaction id (its
 * marker row's `xmin`), so a `QuietPoint` each records sees no write of the others after it.
 */
export async function writeMarkers(
  client: pg.ClientBase,
  stamps: readonly (readonly [database: string, marker: TestMarker])[],
): Promise<string | undefined> {
  if (stamps.length === 0) return undefined;
  // One simple query, so one implicit transaction unless one is open: see `QuietPoint`. A transaction this
  // message started began at its statement time.
  const comments = stamps.map(
    ([database, marker]) =>
      `COMMENT ON DATABASE ${client.escapeIdentifier(database)} IS ${client.escapeLiteral(markerComment(marker))}; `,
  );
  const results = (await client.query(
    comments.join('') +
      'SELECT pg_catalog.pg_current_xact_id()::text AS xid, ' +
      'pg_catalog.transaction_timestamp() = pg_catalog.statement_timestamp() AS alone',
  )) as unknown as pg.QueryResult<{ xid: string; alone: boolean }>[];
  const { xid, alone } = results[stamps.length]!.rows[0]!;
  return alone ? xid : undefined;
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
  return rows.length === 0 ? undefined : parseMarker(rows[0]!.comment);
}

/** Every database on the server `client` is connected to that carries pgtwin's marker. */
export async function listStamped(
  client: pg.ClientBase,
): Promise<{ name: string; marker: TestMarker; isTemplate: boolean }[]> {
  const { rows } = await client.query<{ name: string; comment: string; is_template: boolean }>(
    `SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment, datistemplate AS is_template
       FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE 'pgtwin:%' ORDER BY datname`,
  );
  const stamped = [];
  for (const row of rows) {
    const marker = parseMarker(row.comment);
    // A damaged marker counts as none: never touched.
    if (marker) stamped.push({ name: row.name, marker, isTemplate: row.is_template });
  }
  return stamped;
}
