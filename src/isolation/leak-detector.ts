import pg from 'pg';
import { writtenSince } from '../connection/written-since.js';
import { quietPoint, type QuietPoint } from '../connection/quiet-since.js';
import { exemptFromIsolation } from './exemption.js';
import { endSoon } from '../connection/end-soon.js';

/** One table whose committed contents changed while every test should have rolled back. */
export interface TableLeak {
  /** Schema-qualified, quoted as needed, e.g. `public.users`. */
  readonly table: string;
  readonly rowsBefore: number;
  readonly rowsAfter: number;
  /** Visible rows inserted or updated by transactions that committed during the run. */
  readonly rowsWritten: number;
  readonly change: 'changed' | 'created' | 'dropped';
}

/** What was committed to the test database outside the test transactions. */
export interface LeakReport {
  readonly database: string;
  readonly tables: readonly TableLeak[];
  /**
   * The system catalogs in which committed DDL changed something (`pg_class`, `pg_attribute`, …): a column
   * added, an index or function created, an object dropped. Empty when the structure is as it was.
   */
  readonly catalogs: readonly string[];
}

/** Whether anything was committed outside the test transactions. */
export function hasLeaks(report: LeakReport): boolean {
  return report.tables.length > 0 || report.catalogs.length > 0;
}

/** The catalogs DDL writes to; their rows are compared like a table's (count, and rows newer than the start). */
const CATALOGS = [
  'pg_namespace',
  'pg_class',
  'pg_attribute',
  'pg_attrdef',
  'pg_constraint',
  'pg_index',
  'pg_type',
  'pg_enum',
  'pg_proc',
  'pg_trigger',
  'pg_rewrite',
  'pg_policy',
  'pg_extension',
  'pg_sequence',
];

interface TableCount {
  table: string;
  rows: number;
  /** Rows written since the transaction id the count was asked about (0 when none was). */
  written: number;
}

/** A {@link LeakDetector}'s starting snapshot as plain data, to compare with in a later process. */
export interface LeakBaseline {
  /** The first transaction id not yet visible when the snapshot was taken. */
  xid: string;
  /** Exact row counts per table (`schema.table`). */
  tables: Record<string, number>;
  /** Row counts of the catalogs DDL writes to. */
  catalogs: Record<string, number>;
  /** Set when no transaction was running as the counts were taken: they hold while the server stays quiet. */
  quiet?: QuietPoint;
}

/** What a database holds, as a leak check compares it: exact row counts per table and per DDL catalog. */
export type ContentCounts = Pick<LeakBaseline, 'tables' | 'catalogs'>;

/**
 * Counts what the database of `client` holds. For a database about to be copied (a template just built),
 * counting it once stands for counting each fresh copy, whose pages no backend has read yet.
 */
export async function countContents(client: pg.ClientBase): Promise<ContentCounts> {
  const toRecord = (counts: TableCount[]) =>
    Object.fromEntries(counts.map((count) => [count.table, count.rows]));
  return {
    tables: toRecord(await countRows(client)),
    catalogs: toRecord(await countCatalogRows(client)),
  };
}

/**
 * Detects writes that were committed outside the test transactions: a connection isolation did not take
 * over, a write in `beforeAll`. It compares exact row counts taken at start and at {@link check}, and counts
 * rows whose `xmin` (the writing transaction) is newer than the start, which also catches updates and
 * inserts balanced by deletes. Statistics views (`pg_stat_user_tables`) cannot tell, since they count
 * rolled-back writes too and are updated asynchronously. Cost: one `count(*)` per table at each end.
 *
 * @example
 * const detector = await LeakDetector.start({ connectionString: url });
 * // ... run the tests ...
 * const report = await detector.check();
 * if (report.tables.length) console.warn(formatLeakReport(report));
 */
export class LeakDetector {
  private constructor(
    private readonly config: pg.ClientConfig,
    private readonly database: string,
    private readonly startXid: bigint,
    private readonly before: Map<string, number>,
    private readonly catalogsBefore: Map<string, number>,
    private readonly quiet: QuietPoint | undefined,
  ) {}

  /**
   * Takes the starting snapshot, through a connection of its own that isolation leaves alone, or on
   * `session`, an open one the caller keeps (later checks connect with `config`). `known`: the rows and
   * catalogs the database is known to hold (a fresh copy of a template whose copies were counted before),
   * taken instead of counting them; only the transaction id is read.
   */
  static async start(
    config: pg.ClientConfig,
    session?: pg.ClientBase,
    known?: ContentCounts,
  ): Promise<LeakDetector> {
    return withClient(config, session, async (client) => {
      const { rows } = await client.query<{ snapshot: string; database: string }>(
        'SELECT pg_current_snapshot()::text AS snapshot, current_database() AS database',
      );
      const { snapshot, database } = rows[0]!;
      const xid = snapshot.split(':')[1]!;
      const { tables, catalogs } = known ?? (await countContents(client));
      return new LeakDetector(
        config,
        database,
        BigInt(xid),
        new Map(Object.entries(tables)),
        new Map(Object.entries(catalogs)),
        quietPoint(snapshot),
      );
    });
  }

  /** The starting snapshot as plain data (JSON), for {@link LeakDetector.resume}. */
  baseline(): LeakBaseline {
    return {
      xid: this.startXid.toString(),
      tables: Object.fromEntries(this.before),
      catalogs: Object.fromEntries(this.catalogsBefore),
      ...(this.quiet && { quiet: this.quiet }),
    };
  }

  /** A detector comparing with a snapshot taken earlier, possibly by another process. */
  static resume(config: pg.ClientConfig, database: string, baseline: LeakBaseline): LeakDetector {
    return new LeakDetector(
      config,
      database,
      BigInt(baseline.xid),
      new Map(Object.entries(baseline.tables)),
      new Map(Object.entries(baseline.catalogs)),
      baseline.quiet,
    );
  }

  /** Compares the database now with the start. */
  async check(): Promise<LeakReport> {
    return (await this.checkAndRebase()).report;
  }

  /**
   * {@link check}, and the database's state as a new starting snapshot: when the report shows no leak, the
   * database is as it was at the start, and the new baseline says so with a newer transaction id, so whatever
   * is committed after the check counts as written since. The id is the oldest transaction still running
   * before counting (not the next one to start), so a transaction open across the check counts too.
   */
  async checkAndRebase(session?: pg.ClientBase): Promise<{ report: LeakReport; baseline: LeakBaseline }> {
    const { snapshot, counts, catalogCounts } = await withClient(this.config, session, async (client) => {
      const { rows } = await client.query<{ snapshot: string }>(
        'SELECT pg_current_snapshot()::text AS snapshot',
      );
      return {
        snapshot: rows[0]!.snapshot,
        counts: await countRows(client, this.startXid),
        catalogCounts: await countCatalogRows(client, this.startXid),
      };
    });
    const quiet = quietPoint(snapshot);
    const baseline: LeakBaseline = {
      xid: snapshot.split(':')[0]!,
      tables: Object.fromEntries(counts.map(({ table, rows }) => [table, rows])),
      catalogs: Object.fromEntries(catalogCounts.map(({ table, rows }) => [table, rows])),
      ...(quiet && { quiet }),
    };
    return { report: this.compare(counts, catalogCounts), baseline };
  }

  private compare(counts: readonly TableCount[], catalogCounts: readonly TableCount[]): LeakReport {
    const catalogs = catalogCounts
      .filter(({ table, rows, written }) => written > 0 || rows !== this.catalogsBefore.get(table))
      .map(({ table }) => table);
    const tables: TableLeak[] = [];
    const seen = new Set<string>();
    for (const { table, rows, written } of counts) {
      seen.add(table);
      const rowsBefore = this.before.get(table);
      if (rowsBefore === undefined)
        tables.push({ table, rowsBefore: 0, rowsAfter: rows, rowsWritten: written, change: 'created' });
      else if (rows !== rowsBefore || written > 0)
        tables.push({ table, rowsBefore, rowsAfter: rows, rowsWritten: written, change: 'changed' });
    }
    for (const [table, rowsBefore] of this.before) {
      if (!seen.has(table))
        tables.push({ table, rowsBefore, rowsAfter: 0, rowsWritten: 0, change: 'dropped' });
    }
    return { database: this.database, tables, catalogs };
  }
}

/** A report as lines a person can act on; empty string when nothing leaked. */
export function formatLeakReport(report: LeakReport): string {
  if (!hasLeaks(report)) return '';
  const lines = report.tables.map(({ table, rowsBefore, rowsAfter, rowsWritten, change }) => {
    if (change === 'created') return `  ${table}: created, ${rowsAfter} rows`;
    if (change === 'dropped') return `  ${table}: dropped (had ${rowsBefore} rows)`;
    const delta = rowsAfter - rowsBefore;
    return `  ${table}: ${delta >= 0 ? '+' : ''}${delta} rows (${rowsBefore} → ${rowsAfter}), ${rowsWritten} rows written`;
  });
  if (report.catalogs.length > 0) lines.push(`  structure changed (DDL; ${report.catalogs.join(', ')})`);
  return (
    `pgtwin: changes were committed to test database ${report.database} outside the test transactions:\n` +
    `${lines.join('\n')}\n` +
    'They come from a connection isolation did not take over (another host name, an exempt client) or from ' +
    'writes outside tests (beforeAll, module load). Later tests and runs see them.'
  );
}

/** Row counts of every table, and with `startXid`, their rows written since. */
async function countRows(client: pg.ClientBase, startXid?: bigint): Promise<TableCount[]> {
  const { rows: tables } = await client.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
      ORDER BY 1`,
  );
  if (tables.length === 0) return [];
  const sql = tables
    .map(({ name }) => `SELECT ${client.escapeLiteral(name)} AS "table", ${counts(startXid)} FROM ${name}`)
    .join(' UNION ALL ');
  const { rows } = await client.query<TableCount>(sql);
  return rows;
}

/** Row counts of the catalogs DDL writes to, and with `startXid`, their rows written since. */
async function countCatalogRows(client: pg.ClientBase, startXid?: bigint): Promise<TableCount[]> {
  const sql = CATALOGS.map(
    (name) => `SELECT '${name}' AS "table", ${counts(startXid)} FROM pg_catalog.${name}`,
  ).join(' UNION ALL ');
  const { rows } = await client.query<TableCount>(sql);
  return rows;
}

/** The select list of a count: rows, and rows written since `startXid` (0 without it). */
function counts(startXid: bigint | undefined): string {
  const written = startXid === undefined ? '0' : `count(*) FILTER (WHERE ${writtenSince(startXid)})`;
  return `count(*)::int AS rows, (${written})::int AS written`;
}

async function withClient<T>(
  config: pg.ClientConfig,
  session: pg.ClientBase | undefined,
  work: (client: pg.ClientBase) => Promise<T>,
): Promise<T> {
  if (session) return work(session);
  const client = exemptFromIsolation(new pg.Client(config));
  await client.connect();
  try {
    return await work(client);
  } finally {
    // A copy that replaces the database terminates what is still connected to it anyway.
    endSoon(client);
  }
}
