import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import { endTransaction } from '../connection/in-transaction.js';
import { unseenBy } from '../connection/written-since.js';
import type { CatalogTable } from '../structure/table-catalog.js';
import { beginSnapshot } from './mirror-session.js';
import type { TableChecksum } from './table-checksum.js';

/**
 * What the mirrored tables' checksums were read in, so that a later run can prove nothing changed since
 * and take them again instead of hashing every row: the server (system identifier, timeline, version, WAL
 * position), the database's OID, the snapshot (which transactions had committed), the structure
 * fingerprint, and per table its OID, row count and checksum.
 */
export interface ChecksumBaseline {
  format: typeof FORMAT;
  /** The tables as the caller named them (`config.mirror.full`); the keys of {@link tables} are the catalog's. */
  requested: readonly string[];
  server: ServerState;
  structure: string;
  tables: Record<string, { qualifiedName: string; oid: string; rows: number; checksum: TableChecksum }>;
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
}

/** What {@link captureBaseline} reads in the checksums' snapshot; completed with the checksums and structure. */
export type BaselineState = Omit<ChecksumBaseline, 'requested' | 'structure' | 'tables'> & {
  tables: Record<string, { qualifiedName: string; oid: string; rows: number }>;
};

const FORMAT = 1;
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
 * update leaves one; a delete changes the count unless an insert balances it). `structure` (the structure
 * fingerprint, maybe still being read) must equal the baseline's too, since a checksum hashes the rows'
 * text, which a column added or a type changed alters. Call on a client with no open transaction; it reads
 * in one snapshot of its own.
 */
export async function unchangedChecksums(
  client: pg.ClientBase,
  baseline: ChecksumBaseline,
  requested: readonly string[],
  structure: Promise<string>,
): Promise<{ data: Record<string, TableChecksum> } | { stale: string }> {
  if (JSON.stringify(baseline.requested) !== JSON.stringify(requested))
    return { stale: 'the mirrored tables configured changed' };
  let failure: unknown;
  try {
    await beginSnapshot(client);
    const now = await readServerState(client);
    const { server } = baseline;
    if (now.system !== server.system || now.database !== server.database)
      return { stale: 'another server or database' };
    if (now.timeline !== server.timeline || now.version !== server.version)
      return { stale: 'the server changed timeline (a restore or failover) or version' };
    const age = BigInt(now.xmin) - BigInt(server.xmin);
    if (age < 0n || age >= MAX_AGE) return { stale: `taken ${age} transactions ago` };
    const { rows } = await client.query<{ behind: boolean }>('SELECT $1::pg_lsn > $2::pg_lsn AS behind', [
      server.lsn,
      now.lsn,
    ]);
    if (rows[0]!.behind) return { stale: "the server's WAL is behind the reading (a restore, or a replica)" };
    const tables = Object.entries(baseline.tables).map(([key, table]) => ({ key, ...table }));
    const states = await readTableStates(client, tables, server.snapshot);
    if (!states) return { stale: 'rows were written since' };
    for (const table of tables) {
      const state = states[table.key];
      if (state?.oid !== table.oid) return { stale: `${table.key} was replaced` };
      if (state.rows !== table.rows) return { stale: `rows were deleted from ${table.key}` };
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
  };
}

async function readServerState(client: pg.ClientBase): Promise<ServerState> {
  const { rows } = await client.query<ServerState>(
    `SELECT s.system_identifier::text AS system, k.timeline_id AS timeline,
            pg_catalog.current_setting('server_version_num') AS version, d.oid::text AS database,
            (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                  ELSE pg_catalog.pg_current_wal_lsn() END)::text AS lsn,
            pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text AS xmin,
            pg_catalog.pg_current_snapshot()::text AS snapshot
       FROM pg_catalog.pg_control_system() s, pg_catalog.pg_control_checkpoint() k, pg_catalog.pg_database d
      WHERE d.datname = pg_catalog.current_database()`,
  );
  return rows[0]!;
}

/**
 * Per table: OID, row count, in one scan that also counts the rows written by a transaction `snapshot` does
 * not see; `undefined` when any has such rows, row-level security (the rows a role sees may change with no
 * row written), or is not a plain or partitioned table.
 */
async function readTableStates(
  client: pg.ClientBase,
  tables: readonly Pick<CatalogTable, 'key' | 'qualifiedName'>[],
  snapshot: string,
): Promise<Record<string, { qualifiedName: string; oid: string; rows: number }> | undefined> {
  if (tables.length === 0) return {};
  const newer = unseenBy(snapshot);
  const sql = tables
    .map(
      (table, index) =>
        `SELECT ${index} AS i, c.oid::text AS oid, c.relkind IN ('r', 'p') AND NOT c.relrowsecurity AS plain, ` +
        `n.rows::int8::text AS rows, n.written::int8::text AS written FROM pg_catalog.pg_class c, ` +
        `(SELECT count(*) AS rows, count(*) FILTER (WHERE ${newer}) AS written FROM ${table.qualifiedName}) n ` +
        `WHERE c.oid = ${client.escapeLiteral(table.qualifiedName)}::pg_catalog.regclass`,
    )
    .join(' UNION ALL ');
  const { rows } = await client.query<{
    i: number;
    oid: string;
    plain: boolean;
    rows: string;
    written: string;
  }>(sql);
  if (rows.length !== tables.length || rows.some((row) => !row.plain || row.written !== '0'))
    return undefined;
  return Object.fromEntries(
    rows.map((row) => {
      const table = tables[row.i]!;
      return [table.key, { qualifiedName: table.qualifiedName, oid: row.oid, rows: Number(row.rows) }];
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
export async function readBaseline(file: string): Promise<ChecksumBaseline | undefined> {
  try {
    const { digest, baseline } = JSON.parse(await readFile(file, 'utf8')) as {
      digest: string;
      baseline: ChecksumBaseline;
    };
    if (baseline.format !== FORMAT || digest !== digestOf(baseline)) return undefined;
    return baseline;
  } catch {
    return undefined;
  }
}

/** Keeps `baseline` in `file`, whole or not at all (written aside, then renamed), with a digest of itself. */
export async function writeBaseline(file: string, baseline: ChecksumBaseline): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const aside = `${file}.${process.pid}.tmp`;
  await writeFile(aside, JSON.stringify({ digest: digestOf(baseline), baseline }));
  await rename(aside, file);
}

function digestOf(baseline: ChecksumBaseline): string {
  return createHash('sha256').update(JSON.stringify(baseline)).digest('hex');
}
