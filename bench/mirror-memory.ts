/**
 * Memory benchmark of mirroring: syncs a table of `rows` rows between two scratch databases and samples
 * the process's resident memory throughout. Compiled first, because an in-process TypeScript loader
 * (jiti) alone holds about 125 MB:
 *
 *   npx esbuild bench/mirror-memory.ts --bundle --platform=node --format=esm --packages=external \
 *     --outfile=bench/out/mirror-memory.mjs && node --expose-gc bench/out/mirror-memory.mjs 1000000
 *
 * Server from PGTWIN_TEST_SERVER_URL (default postgres://postgres@127.0.0.1:5432/postgres). Exits 1 when the
 * peak passes 150 MB.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { syncTables } from '../src/mirror/index.js';

/** What {@link measureMirror} observed. */
export interface MirrorMeasurement {
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  /** Highest resident set size sampled during the sync, in MB. */
  peakRssMb: number;
  /** Resident set size just before the sync, in MB. */
  startRssMb: number;
}

const TABLE_SQL = `CREATE TABLE public.big (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text, body text, data jsonb, created_at timestamptz)`;

/**
 * Creates a source with `rows` rows and an empty target on `serverUrl`, syncs, and reports speed and peak RSS.
 *
 * @example
 * const { peakRssMb } = await measureMirror({ rows: 1_000_000 }); // below 150 when streaming works
 */
export async function measureMirror(
  options: { rows?: number; serverUrl?: string } = {},
): Promise<MirrorMeasurement> {
  const rows = options.rows ?? 1_000_000;
  const serverUrl =
    options.serverUrl ?? process.env.PGTWIN_TEST_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const names = { source: `pgtwin_bench_src_${suffix}`, target: `pgtwin_bench_dst_${suffix}` };
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  const urlOf = (database: string) =>
    Object.assign(new URL(serverUrl), { pathname: `/${database}` }).toString();
  const clients: pg.Client[] = [];
  try {
    for (const name of Object.values(names)) await admin.query(`CREATE DATABASE "${name}"`);
    const [source, target] = [new pg.Client(urlOf(names.source)), new pg.Client(urlOf(names.target))];
    clients.push(source, target);
    await Promise.all(clients.map((client) => client.connect()));
    await source.query(TABLE_SQL);
    await target.query(TABLE_SQL);
    await source.query(
      `INSERT INTO public.big (title, body, data, created_at)
       SELECT 'row ' || i, repeat(md5(i::text), 3) || E'\\t\\n', jsonb_build_object('i', i, 'tags', ARRAY['a', 'b']),
              '2024-01-01'::timestamptz + i * interval '1 second'
       FROM generate_series(1, $1) AS i`,
      [rows],
    );
    await source.query('VACUUM ANALYZE public.big');

    global.gc?.();
    const startRss = process.memoryUsage.rss();
    let peakRss = startRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);
    const started = process.hrtime.bigint();
    await syncTables(source, target, {
      policy: { mirror: { full: ['public.big'], structureOnly: [] }, projectSchemas: 'project_*' },
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    clearInterval(sampler);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    return {
      rows,
      seconds: Math.round(seconds * 100) / 100,
      rowsPerSecond: Math.round(rows / seconds),
      peakRssMb: Math.round(peakRss / 2 ** 20),
      startRssMb: Math.round(startRss / 2 ** 20),
    };
  } finally {
    for (const client of clients) await client.end().catch(() => undefined);
    for (const name of Object.values(names))
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const result = await measureMirror({ rows: process.argv[2] ? Number(process.argv[2]) : undefined });
  console.log(JSON.stringify(result));
  if (result.peakRssMb >= 150) process.exitCode = 1;
}
