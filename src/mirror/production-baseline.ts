import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import { endTransaction } from '../connection/in-transaction.js';
import { stillQuiet, unchangedSince, type QuietPoint } from '../connection/quiet-since.js';
import { INSTANCE_COLUMN } from '../guard/server-identity.js';
import { recentRowsDigest, unseenBy } from '../connection/written-since.js';
import type { CatalogTable } from '../structure/table-catalog.js';
import { beginSnapshot, joinSnapshot } from './mirror-session.js';
import type { TableChecksum } from './table-checksum.js';

/**
 * What production's structure and mirrored rows were read in, so that a later run can prove nothing changed
 * since and take the structure fingerprint and the checksums again instead of reading the catalogs and hashing
 * every row: the server (system identifier, timeline, version, WAL position), the database's OID, the
 * checksums' snapshot (which transactions had committed), per table its OID, row count and checksum, and the
 * structure fingerprint with the state of the catalogs it was read from.
 */
export interface ProductionBaseline {
  format: typeof FORMAT;
  /** The tables as the caller named them (`config.mirror.full`); the keys of {@link tables} are the catalog's. */
  requested: readonly string[];
  server: ServerState;
  structure: string;
  /** The catalogs in the structure's snapshot; absent when they could not be read (then it is read each time). */
  catalogs?: CatalogState;
  tables: Record<string, TableState & { checksum: TableChecksum }>;
  /**
   * Set by a run whose test database lives on the same running server (see {@link ProductionQuiet}): when
   * the rows and the catalogs were last proven, and pgtwin's own marker writes on that server since.
   */
  quiet?: ProductionQuiet;
}

/**
 * Production proven as the baseline says at a quiet point of the server it shares with the test database:
 * the test side's markers take transaction ids, which alone would make production look written to. `instance`
 * (the server's start time and port) is the running server the ids were taken on.
 */
export interface ProductionQuiet {
  instance: string;
  data?: QuietPoint;
  structure?: QuietPoint;
}

/** A table as a reading saw it: OID, row count and its recently written rows (see `recentRowsDigest`). */
interface TableState {
  qualifiedName: string;
  oid: string;
  rows: number;
  recent: string;
}

/**
 * The catalogs of production's database as the structure was read: the snapshot, each catalog's row count,
 * and the roles policies name (pg_authid is shared by every database, so a row check of it would be spoiled
 * by any role created anywhere on the server). `reader` names what read the structure (pgtwin's version and
 * the schemas selected), which the fingerprint also depends on.
 */
export interface CatalogState {
  reader: string;
  snapshot: string;
  /** The snapshot's xmin (xid8, decimal text): the state's age is counted from it. */
  xmin: string;
  roles: string;
  catalogs: Record<string, { rows: number; recent: string }>;
}

/** The part of a baseline read from the server itself, in the snapshot. */
interface ServerState {
  system: string;
  timeline: number;
  version: string;
  database: string;
  lsn: string;
  /** The snapshot's xmin, a 64-bit transaction id (xid8) as decimal text: the baseline's age is counted from it. */
  xmin: string;
  /** The snapshot itself (`xmin:xmax:xip,…`, xid8): a row written by a transaction it does not see is new. */
  snapshot: string;
  /** The running server: its start time and port. */
  instance: string;
}

/** What {@link captureBaseline} reads in the checksums' snapshot; completed with the checksums and structure. */
export type BaselineState = Omit<ProductionBaseline, 'requested' | 'structure' | 'catalogs' | 'tables'> & {
  tables: Record<string, TableState>;
};

const FORMAT = 2;
/**
 * How far (in transactions) a baseline may lie behind: rows' xmin are 32-bit, compared by age(), which is
 * exact within 2^31 transactions; a baseline older than this is not trusted and the rows are hashed again.
 */
const MAX_AGE = 1_000_000_000n;

/**
 * Reads, in the current snapshot transaction on `client` (the one the checksums are read in), what a later
 * run needs to prove the tables unchanged; `undefined` when they cannot be proven so (row-level security, a
 * table that is not a plain or partitioned table, or a server that does not let the role read its control
 * data). Never aborts the caller's transaction.
 */
export async function captureBaseline(
  client: pg.ClientBase,
  catalog: readonly CatalogTable[],
): Promise<BaselineState | undefined> {
  await client.query('SAVEPOINT pgtwin_baseline');
  try {
    const server = await readServerState(client);
    const tables = await readTableStates(client, catalog, server.snapshot);
    await client.query('RELEASE SAVEPOINT pgtwin_baseline');
    if (!tables) return undefined;
    return { format: FORMAT, server, tables };
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT pgtwin_baseline');
    return undefined;
  }
}

/**
 * The checksums of `baseline` when the tables `requested` provably hold the same rows as when it was taken,
 * else why not (`{ stale }`, for the debug log). Proof: the same server (system identifier, timeline,
 * version, WAL not behind) and database, a baseline less than a billion transactions old, and per table the
 * same OID and row count and no visible row written by a transaction its snapshot did not see (an insert or
 * update leaves one; a delete changes the count unless an insert balances it) and the same rows recently
 * written before it (see `recentRowsDigest`). `structure` (the structure fingerprint, maybe still being
 * read) must equal the baseline's too, since a checksum hashes the rows' text, which a column added or a
 * type changed alters. When the server took no transaction id since the baseline's snapshot (none running
 * at either), no row is read (see `unchangedSince`). Call on a client with no open transaction; it reads in
 * one snapshot of its own, or in `snapshot` (exported, e.g. the one a build copies from).
 */
export async function unchangedChecksums(
  client: pg.ClientBase,
  baseline: ProductionBaseline,
  requested: readonly string[],
  structure: Promise<string>,
  snapshot?: string,
): Promise<{ data: Record<string, TableChecksum>; proof: Proof } | { stale: string }> {
  if (JSON.stringify(baseline.requested) !== JSON.stringify(requested))
    return { stale: 'the mirrored tables configured changed' };
  let failure: unknown;
  let proof: Proof;
  try {
    if (snapshot === undefined) await beginSnapshot(client);
    else await joinSnapshot(client, snapshot);
    const { server } = baseline;
    const checked = await serverChanged(client, server, server.xmin);
    if ('stale' in checked) return checked;
    // No transaction id taken on the server since the checksums' snapshot (or since the rows were last proven,
    // but for pgtwin's own markers): no row can have changed.
    const quiet = quietSince(server.snapshot, baseline.quiet, 'data', checked.now);
    proof = { at: checked.now.snapshot, instance: checked.now.instance, quiet };
    if (!quiet) {
      const tables = Object.entries(baseline.tables).map(([key, table]) => ({ key, ...table }));
      const states = await readTableStates(client, tables, server.snapshot);
      if (!states) return { stale: 'rows were written since' };
      for (const table of tables) {
        const state = states[table.key];
        if (state?.oid !== table.oid) return { stale: `${table.key} was replaced` };
        const change = rowsChange(state, table);
        if (change === 'deleted') return { stale: `rows were deleted from ${table.key}` };
        if (change === 'written') return { stale: 'rows were written since' };
      }
    }
  } catch (error) {
    // A table dropped or renamed, a privilege revoked: not provably unchanged, so hashed as usual.
    failure = error;
    return { stale: `it could not be checked (${(error as Error).message})` };
  } finally {
    await endTransaction(client, failure);
  }
  if ((await structure) !== baseline.structure) return { stale: "production's structure changed" };
  return {
    data: Object.fromEntries(Object.entries(baseline.tables).map(([key, table]) => [key, table.checksum])),
    proof,
  };
}

/** How production was proven as a baseline says: in which snapshot, on which running server, and whether by its quiet alone. */
export interface Proof {
  at: string;
  instance: string;
  quiet: boolean;
}

/**
 * Whether the server took no transaction id since `snapshot` (none running then or now), or since the
 * `part`'s last proof on this very running server but for pgtwin's own marker writes.
 */
function quietSince(
  snapshot: string,
  quiet: ProductionQuiet | undefined,
  part: 'data' | 'structure',
  now: ServerState,
): boolean {
  if (unchangedSince(snapshot, now.snapshot)) return true;
  const point = quiet?.[part];
  return (
    point !== undefined && quiet!.instance === now.instance && stillQuiet(point, undefined, now.snapshot)
  );
}

/**
 * Whether production's structure provably is what `baseline` read: the same server (as for the checksums),
 * a reading less than a billion transactions old, the same reader, the same roles, and per catalog the same
 * row count, no visible row written by a transaction the reading's snapshot did not see and the same rows
 * recently written before it (see `recentRowsDigest`). DDL inserts or updates catalog rows (a new row
 * version, so a new xmin) or deletes them (a lower count); what PostgreSQL updates in place (VACUUM's and
 * ANALYZE's statistics in pg_class, pg_database's frozen ids) the structure does not read, and statistics
 * (pg_statistic) are left out; when the server took no transaction id since the reading's snapshot, no
 * catalog is read (see `unchangedSince`). `true`, else why not (`{ stale }`). Reads in one snapshot of its
 * own, on a client with no open transaction.
 */
export async function unchangedStructure(
  client: pg.ClientBase,
  baseline: ProductionBaseline,
  reader: string,
): Promise<{ proof: Proof } | { stale: string }> {
  const state = baseline.catalogs;
  if (!state) return { stale: 'no reading of the catalogs kept' };
  if (state.reader !== reader) return { stale: 'another pgtwin version or schema selection read it' };
  let failure: unknown;
  try {
    await beginSnapshot(client);
    const checked = await serverChanged(client, baseline.server, state.xmin);
    if ('stale' in checked) return checked;
    // No transaction id taken on the server since the catalogs were read: no DDL, no role renamed.
    const quiet = quietSince(state.snapshot, baseline.quiet, 'structure', checked.now);
    const proof = { at: checked.now.snapshot, instance: checked.now.instance, quiet };
    if (quiet) return { proof };
    if ((await readRoles(client)) !== state.roles)
      return { stale: 'a role a policy names was renamed or dropped' };
    const names = Object.keys(state.catalogs);
    const counts = await catalogCounts(client, names, state.snapshot);
    for (const name of names) {
      const count = counts[name]!;
      const change = count.written > 0 ? 'written' : rowsChange(count, state.catalogs[name]!);
      if (change === 'deleted') return { stale: `rows were deleted from ${name}` };
      if (change === 'written') return { stale: `${name} has rows written since` };
    }
    return { proof };
  } catch (error) {
    // A privilege revoked, another server: not provably unchanged, so read as usual.
    failure = error;
    return { stale: `it could not be checked (${(error as Error).message})` };
  } finally {
    await endTransaction(client, failure);
  }
}

/**
 * How a table's or catalog's rows differ from a reading's, given no row written by a transaction it did not
 * see: a lower count is a deletion; a higher one, or other rows recently written, a write (a savepoint's,
 * see `recentRowsDigest`). Deletions are named first, whatever else a busy server's timing shows.
 */
function rowsChange(
  now: { rows: number; recent: string },
  then: { rows: number; recent: string },
): 'deleted' | 'written' | undefined {
  if (now.rows < then.rows) return 'deleted';
  if (now.rows !== then.rows || now.recent !== then.recent) return 'written';
  return undefined;
}

/**
 * Reads, in the current transaction on `client` (the structure's, so that both describe one snapshot),
 * the state {@link unchangedStructure} compares against; `undefined` when the role cannot read it. Never
 * aborts the caller's transaction.
 */
export async function captureCatalogs(
  client: pg.ClientBase,
  reader: string,
): Promise<CatalogState | undefined> {
  await client.query('SAVEPOINT pgtwin_catalogs');
  try {
    const { rows } = await client.query<{ snapshot: string; xmin: string; catalogs: string[] }>(
      `SELECT pg_catalog.pg_current_snapshot()::text AS snapshot,
              pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text AS xmin,
              ARRAY(SELECT c.relname::text FROM pg_catalog.pg_class c
                     WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace AND c.relkind = 'r'
                       AND NOT c.relisshared AND c.relname <> ALL ($1::text[])
                       AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
                     ORDER BY 1) AS catalogs`,
      [UNREAD_CATALOGS],
    );
    const { snapshot, xmin, catalogs } = rows[0]!;
    const counts = await catalogCounts(client, catalogs, snapshot);
    const roles = await readRoles(client);
    await client.query('RELEASE SAVEPOINT pgtwin_catalogs');
    const states = Object.fromEntries(
      catalogs.map((name) => [name, { rows: counts[name]!.rows, recent: counts[name]!.recent }]),
    );
    return { reader, snapshot, xmin, roles, catalogs: states };
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT pgtwin_catalogs');
    return undefined;
  }
}

/**
 * Catalogs whose rows change without the structure changing: statistics (ANALYZE, autovacuum) and large
 * objects (data, which a role may not read anyway).
 */
const UNREAD_CATALOGS = [
  'pg_statistic',
  'pg_statistic_ext_data',
  'pg_largeobject',
  'pg_largeobject_metadata',
];

/**
 * Per catalog of `names`: its row count, how many rows `snapshot` did not see written, and the digest of the
 * rows it saw recently written.
 */
async function catalogCounts(
  client: pg.ClientBase,
  names: readonly string[],
  snapshot: string,
): Promise<Record<string, { rows: number; written: number; recent: string }>> {
  const sql = names
    .map(
      (name, index) =>
        `SELECT ${index} AS i, count(*)::int AS rows, count(*) FILTER (WHERE ${unseenBy(snapshot)})::int ` +
        `AS written, ${recentRowsDigest(snapshot)} AS recent FROM pg_catalog.${client.escapeIdentifier(name)}`,
    )
    .join(' UNION ALL ');
  const { rows } = await client.query<{ i: number; rows: number; written: number; recent: string }>(sql);
  return Object.fromEntries(rows.map(({ i, ...count }) => [names[i]!, count]));
}

/** The roles policies name (the only role names the structure holds), by OID and name, hashed. */
async function readRoles(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ roles: string }>(
    `SELECT pg_catalog.md5(pg_catalog.string_agg(oid::text || ' ' || rolname, ',' ORDER BY oid)) AS roles
       FROM pg_catalog.pg_roles
      WHERE oid IN (SELECT pg_catalog.unnest(polroles) FROM pg_catalog.pg_policy)`,
  );
  return rows[0]!.roles;
}

/**
 * Why a reading taken on `server` (its catalogs' or rows' snapshot having xmin `xmin`) cannot be trusted on
 * the server `client` reaches now, or `undefined` when it can: another server or database, another timeline
 * or version, a WAL behind the reading's, or more than {@link MAX_AGE} transactions since.
 */
async function serverChanged(
  client: pg.ClientBase,
  server: ServerState,
  xmin: string,
): Promise<{ stale: string } | { now: ServerState }> {
  const now = await readServerState(client);
  if (now.system !== server.system || now.database !== server.database)
    return { stale: 'another server or database' };
  if (now.timeline !== server.timeline || now.version !== server.version)
    return { stale: 'the server changed timeline (a restore or failover) or version' };
  const age = BigInt(now.xmin) - BigInt(xmin);
  if (age < 0n || age >= MAX_AGE) return { stale: `taken ${age} transactions ago` };
  const { rows } = await client.query<{ behind: boolean }>('SELECT $1::pg_lsn > $2::pg_lsn AS behind', [
    server.lsn,
    now.lsn,
  ]);
  if (rows[0]!.behind) return { stale: "the server's WAL is behind the reading (a restore, or a replica)" };
  return { now };
}

async function readServerState(client: pg.ClientBase): Promise<ServerState> {
  const { rows } = await client.query<ServerState>(
    `SELECT s.system_identifier::text AS system, k.timeline_id AS timeline,
            pg_catalog.current_setting('server_version_num') AS version, d.oid::text AS database,
            (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                  ELSE pg_catalog.pg_current_wal_lsn() END)::text AS lsn,
            pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text AS xmin,
            pg_catalog.pg_current_snapshot()::text AS snapshot, ${INSTANCE_COLUMN}
       FROM pg_catalog.pg_control_system() s, pg_catalog.pg_control_checkpoint() k, pg_catalog.pg_database d
      WHERE d.datname = pg_catalog.current_database()`,
  );
  return rows[0]!;
}

/**
 * Per table: OID, row count and the digest of the rows `snapshot` saw recently written, in one scan that
 * also counts the rows written by a transaction `snapshot` does not see; `undefined` when any has such rows,
 * row-level security (the rows a role sees may change with no row written), or is not a plain or
 * partitioned table.
 */
async function readTableStates(
  client: pg.ClientBase,
  tables: readonly Pick<CatalogTable, 'key' | 'qualifiedName'>[],
  snapshot: string,
): Promise<Record<string, TableState> | undefined> {
  if (tables.length === 0) return {};
  const newer = unseenBy(snapshot);
  const sql = tables
    .map(
      (table, index) =>
        `SELECT ${index} AS i, c.oid::text AS oid, c.relkind IN ('r', 'p') AND NOT c.relrowsecurity AS plain, ` +
        `n.rows::int8::text AS rows, n.written::int8::text AS written, n.recent FROM pg_catalog.pg_class c, ` +
        `(SELECT count(*) AS rows, count(*) FILTER (WHERE ${newer}) AS written, ` +
        `${recentRowsDigest(snapshot)} AS recent FROM ${table.qualifiedName}) n ` +
        `WHERE c.oid = ${client.escapeLiteral(table.qualifiedName)}::pg_catalog.regclass`,
    )
    .join(' UNION ALL ');
  const { rows } = await client.query<{
    i: number;
    oid: string;
    plain: boolean;
    rows: string;
    written: string;
    recent: string;
  }>(sql);
  if (rows.length !== tables.length || rows.some((row) => !row.plain || row.written !== '0'))
    return undefined;
  return Object.fromEntries(
    rows.map(({ i, oid, rows: count, recent }) => {
      const { key, qualifiedName } = tables[i]!;
      return [key, { qualifiedName, oid, rows: Number(count), recent }];
    }),
  );
}

/**
 * Where the baselines of `production` are kept between runs: a file per production database (address,
 * name and user; never the password) under `node_modules/.cache/pgtwin` of the project.
 */
export function baselineFile(rootDir: string, production: DatabaseTarget): string {
  const key = createHash('sha256')
    .update(JSON.stringify([production.host, production.port, production.database, production.user]))
    .digest('hex')
    .slice(0, 16);
  return path.join(rootDir, 'node_modules', '.cache', 'pgtwin', `production-${key}.json`);
}

/** The baseline kept in `file`; `undefined` when there is none or it is damaged (it is only a shortcut). */
export async function readBaseline(file: string): Promise<ProductionBaseline | undefined> {
  try {
    const { digest, baseline } = JSON.parse(await readFile(file, 'utf8')) as {
      digest: string;
      baseline: ProductionBaseline;
    };
    if (baseline.format !== FORMAT || digest !== digestOf(baseline)) return undefined;
    return baseline;
  } catch {
    return undefined;
  }
}

/** Keeps `baseline` in `file`, whole or not at all (written aside, then renamed), with a digest of itself. */
export async function writeBaseline(file: string, baseline: ProductionBaseline): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const aside = `${file}.${process.pid}.tmp`;
  await writeFile(aside, JSON.stringify({ digest: digestOf(baseline), baseline }));
  await rename(aside, file);
}

function digestOf(baseline: ProductionBaseline): string {
  return createHash('sha256').update(JSON.stringify(baseline)).digest('hex');
}
