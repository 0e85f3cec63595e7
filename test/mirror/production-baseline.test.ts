import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/connection/connect.js';
import {
  baselineFile,
  captureBaseline,
  captureCatalogs,
  readBaseline,
  unchangedChecksums,
  unchangedStructure,
  writeBaseline,
  type ProductionBaseline,
} from '../../src/mirror/production-baseline.js';
import { tableChecksums } from '../../src/mirror/table-checksum.js';
import {
  productionStructure,
  readProductionFingerprint,
} from '../../src/pipeline/read-production-fingerprint.js';
import type { Logger } from '../../src/util/logger.js';
import { testConfig } from '../helpers/config.js';
import { databaseUrl, useScratch } from '../helpers/databases.js';
import { PRODUCTION_ROWS_SQL, STRUCTURE_SQL, useTempDirs } from './mirror-databases.js';

const scratch = useScratch('baseline');
const tempDir = useTempDirs();
const MIRRORED = ['public.object_models', 'public.prompts'];
const open: pg.Client[] = [];
let production: string;

/** A session kept open until the file ends (a transaction held across a reading). */
async function client(): Promise<pg.Client> {
  const opened = new pg.Client({ connectionString: databaseUrl(production) });
  await opened.connect();
  open.push(opened);
  return opened;
}

/** `work` on a session of its own, ended after it: the file makes a hundred readings, not a hundred sessions. */
async function withClient<T>(work: (session: pg.Client) => Promise<T>): Promise<T> {
  const session = new pg.Client({ connectionString: databaseUrl(production) });
  await session.connect();
  try {
    return await work(session);
  } finally {
    await session.end();
  }
}

/** A baseline of production now, as a reading of the fingerprint takes it, with structure `structure`. */
async function baselineNow(structure = 'S'): Promise<ProductionBaseline> {
  return withClient(async (reader) => {
    let state: Awaited<ReturnType<typeof captureBaseline>>;
    const data = await tableChecksums(reader, MIRRORED, {
      quick: true,
      inSnapshot: async (session, catalog) => {
        state = await captureBaseline(session, catalog);
      },
    });
    expect(state!).toBeDefined();
    const tables = Object.fromEntries(
      Object.entries(state!.tables).map(([key, table]) => [key, { ...table, checksum: data[key]! }]),
    );
    return { ...state!, requested: MIRRORED, structure, tables };
  });
}

async function reused(baseline: ProductionBaseline, structure = 'S') {
  return withClient((session) => unchangedChecksums(session, baseline, MIRRORED, Promise.resolve(structure)));
}

async function run(sql: string): Promise<void> {
  await withClient((session) => session.query(sql));
}

beforeAll(async () => {
  ({ name: production } = await scratch.database('prod'));
  await run(STRUCTURE_SQL);
  await run(PRODUCTION_ROWS_SQL);
});

afterAll(async () => {
  for (const opened of open) await opened.end().catch(() => undefined);
});

describe('production baseline: rows', () => {
  it('gives the checksums back while no row is written, and they equal a fresh hash of every row', async () => {
    const baseline = await baselineNow();
    const fresh = await withClient((session) => tableChecksums(session, MIRRORED, { quick: true }));
    expect(await reused(baseline)).toMatchObject({ data: fresh });
    // A row inserted and deleted again leaves the same rows: still provably unchanged, and still right.
    await run(`INSERT INTO public.prompts (body) VALUES ('gone again')`);
    await run(`DELETE FROM public.prompts WHERE id = (SELECT max(id) FROM public.prompts)`);
    expect(await reused(baseline)).toMatchObject({
      data: await withClient((session) => tableChecksums(session, MIRRORED, { quick: true })),
    });
  });

  it('refuses after an update, a delete, a delete balanced by an insert, or a structure change', async () => {
    const first = await baselineNow();
    await run(`UPDATE public.prompts SET price = 1 WHERE id = (SELECT min(id) FROM public.prompts)`);
    expect(await reused(first)).toEqual({ stale: 'rows were written since' });

    const second = await baselineNow();
    await run(`DELETE FROM public.object_models WHERE id = (SELECT max(id) FROM public.object_models)`);
    expect(await reused(second)).toEqual({ stale: 'rows were deleted from public.object_models' });

    const third = await baselineNow();
    await run(`WITH gone AS (DELETE FROM public.prompts WHERE id = (SELECT max(id) FROM public.prompts) RETURNING body)
               INSERT INTO public.prompts (body) SELECT body FROM gone`);
    expect(await reused(third)).toEqual({ stale: 'rows were written since' });

    // A column added with a default writes no row, but changes every row's text: the structure tells.
    const fourth = await baselineNow('before');
    await run(`ALTER TABLE public.prompts ADD COLUMN extra int DEFAULT 7`);
    expect(await reused(fourth, 'after')).toEqual({ stale: "production's structure changed" });
    expect(await reused(fourth, 'before')).toHaveProperty('data');
    await run(`ALTER TABLE public.prompts DROP COLUMN extra`);
  });

  it('refuses another table list, database or timeline, and a row committed after the reading by a transaction running across it', async () => {
    const baseline = await baselineNow();
    expect(
      await withClient((session) =>
        unchangedChecksums(session, baseline, ['public.prompts'], Promise.resolve('S')),
      ),
    ).toEqual({ stale: 'the mirrored tables configured changed' });
    expect(await reused({ ...baseline, server: { ...baseline.server, database: '1' } })).toEqual({
      stale: 'another server or database',
    });
    expect(await reused({ ...baseline, server: { ...baseline.server, timeline: 99 } })).toHaveProperty(
      'stale',
      expect.stringContaining('timeline'),
    );

    // A transaction running across the reading: a row committed after it began is seen (old), its own row,
    // committed after the reading, is new although older than rows the reading saw.
    const holder = await client();
    await holder.query('BEGIN');
    // Balanced by a delete, so the row count alone cannot tell.
    await holder.query(`DELETE FROM public.prompts WHERE id = (SELECT min(id) FROM public.prompts)`);
    await holder.query(`INSERT INTO public.prompts (body) VALUES ('held')`);
    await run(`INSERT INTO public.prompts (body) VALUES ('committed meanwhile')`);
    const during = await baselineNow();
    expect(await reused(during)).toHaveProperty('data');
    await holder.query('COMMIT');
    expect(await reused(during)).toEqual({ stale: 'rows were written since' });
    expect(await reused(await baselineNow())).toHaveProperty('data');

    // Its row written in a savepoint: a subtransaction's id, which the snapshot does not list.
    await holder.query('BEGIN');
    await holder.query('SAVEPOINT inner_write');
    await holder.query(`DELETE FROM public.prompts WHERE id = (SELECT min(id) FROM public.prompts)`);
    await holder.query(`INSERT INTO public.prompts (body) VALUES ('held in a savepoint')`);
    await holder.query('RELEASE SAVEPOINT inner_write');
    await run(`INSERT INTO public.prompts (body) VALUES ('committed meanwhile, again')`);
    const across = await baselineNow();
    expect(await reused(across)).toHaveProperty('data');
    await holder.query('COMMIT');
    expect(await reused(across)).toEqual({ stale: 'rows were written since' });
  });

  it('keeps a baseline whole in a file of the project, and ignores a damaged one', async () => {
    const rootDir = await tempDir('pgtwin-baseline-');
    const config = await testConfig({ production: { database: production } });
    const file = baselineFile(rootDir, config.production);
    expect(file).toContain(path.join(rootDir, 'node_modules', '.cache', 'pgtwin'));
    expect(file).not.toContain(config.production.password || 'no password');
    const baseline = await baselineNow();
    await writeBaseline(file, baseline);
    expect(await readBaseline(file)).toEqual(baseline);
    const text = JSON.stringify({ digest: 'x', baseline });
    await writeFile(file, text);
    expect(await readBaseline(file)).toBeUndefined();
    await writeFile(file, text.slice(0, 40));
    expect(await readBaseline(file)).toBeUndefined();
  });

  it("lets the fingerprint's reading skip hashing on the next run, until a row changes or PGTWIN_REBUILD", async () => {
    // Its own project directory (testConfig makes one), so its own baseline file.
    const config = await testConfig({
      production: { database: production },
      mirror: { full: MIRRORED },
    });
    const lines: string[] = [];
    const logger = { debug: (line: string) => lines.push(line) } as unknown as Logger;
    const read = async (fresh = false) => {
      lines.length = 0;
      const session = await connect(config.production, 'production');
      open.push(session);
      const structure = productionStructure(session, config);
      // Where and when it proved production: another snapshot each time, unless the server stayed quiet; and
      // with proven checksums, how to prove them again (twin-source.test.ts tests it).
      const {
        proofs: _proofs,
        recheck: _recheck,
        ...result
      } = await readProductionFingerprint(config, structure, {
        fresh,
        logger,
      });
      return {
        ...result,
        reused: lines.some((line) => line.includes('checksums reused')),
        structureReused: lines.some((line) => line.includes('fingerprint reused')),
      };
    };
    const first = await read();
    expect(first).toMatchObject({ reused: false, structureReused: false });
    expect(lines).toContain('fingerprint data: hashing every mirrored row (no reading kept)');
    const second = await read();
    expect(second).toEqual({ ...first, reused: true, structureReused: true });
    expect((await read(true)).reused).toBe(false);
    expect(lines).toContain('fingerprint data: hashing every mirrored row (PGTWIN_REBUILD)');
    await run(
      `UPDATE public.object_models SET label = 'changed' WHERE id = (SELECT min(id) FROM public.object_models)`,
    );
    const changed = await read();
    expect(changed.reused).toBe(false);
    expect(lines).toContain(
      'fingerprint data: hashing every mirrored row (since the last reading, rows were written since)',
    );
    expect(changed.data['public.object_models']).not.toEqual(first.data['public.object_models']);
    expect(changed.data['public.prompts']).toEqual(first.data['public.prompts']);
    expect((await read()).reused).toBe(true);

    // DDL that leaves the structure as it was: read again, found the same, and kept for the next run.
    await run(
      'ALTER TABLE public.prompts ADD COLUMN passing int; ALTER TABLE public.prompts DROP COLUMN passing',
    );
    const same = await read();
    expect(lines).toContain(
      'fingerprint structure: reading the catalogs (since the last reading, pg_attribute has rows written since)',
    );
    expect(same).toMatchObject({ structure: first.structure, reused: true, structureReused: false });
    expect(await read()).toMatchObject({ structure: first.structure, reused: true, structureReused: true });

    // A real change: a new fingerprint, equal to a full reading's, and the rows hashed again.
    await run(`COMMENT ON TABLE public.object_models IS 'models'`);
    const commented = await read();
    expect(commented).toMatchObject({ reused: false, structureReused: false });
    expect(commented.structure).not.toBe(first.structure);
    expect(lines).toContain(
      "fingerprint data: hashing every mirrored row (since the last reading, production's structure changed)",
    );
    expect((await read()).structureReused).toBe(true);
    expect((await read(true)).structure).toBe(commented.structure);
    await run(`COMMENT ON TABLE public.object_models IS NULL`);
  });
});

describe('production baseline: structure', () => {
  /** A baseline of production now with the catalogs' state, as a full reading of the fingerprint keeps it. */
  async function structureNow(): Promise<ProductionBaseline> {
    // As the structure's reading takes it, in its own snapshot (the reading end to end is tested above).
    return withClient(async (session) => {
      await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const state = await captureBaseline(session, []);
      const catalogs = await captureCatalogs(session, 'reader');
      await session.query('COMMIT');
      expect(catalogs).toBeDefined();
      return { ...state!, requested: [], structure: 'S', catalogs, tables: {} };
    });
  }

  const unchanged = async (baseline: ProductionBaseline, reader = baseline.catalogs!.reader) =>
    withClient(async (session) => {
      const result = await unchangedStructure(session, baseline, reader);
      return 'proof' in result || result;
    });

  it('holds while rows, statistics and vacuum change, and refuses after DDL, a renamed role or another reader', async () => {
    const baseline = await structureNow();
    await run(`INSERT INTO public.prompts (body) VALUES ('a row')`);
    await run('ANALYZE public.prompts');
    await run('VACUUM public.object_models');
    expect(await unchanged(baseline)).toBe(true);
    expect(await unchanged(baseline, 'another')).toEqual({
      stale: 'another pgtwin version or schema selection read it',
    });
    expect(await unchanged({ ...baseline, catalogs: undefined }, baseline.catalogs!.reader)).toEqual({
      stale: 'no reading of the catalogs kept',
    });

    const changes: Array<[sql: string, stale: string]> = [
      [`COMMENT ON TABLE public.prompts IS 'noted'`, 'pg_description has rows written since'],
      [`COMMENT ON TABLE public.prompts IS NULL`, 'rows were deleted from pg_description'],
      [`CREATE INDEX prompts_body ON public.prompts (body)`, 'pg_attribute has rows written since'],
      [`ALTER INDEX public.prompts_body RENAME TO prompts_body_renamed`, 'pg_class has rows written since'],
      [`DROP INDEX public.prompts_body_renamed`, 'rows were deleted from pg_attribute'],
    ];
    for (const [sql, stale] of changes) {
      const before = await structureNow();
      await run(sql);
      expect({ sql, result: await unchanged(before) }).toEqual({ sql, result: { stale } });
    }

    // DDL in a savepoint of a transaction running across the reading, committed after it.
    const holder = await client();
    await holder.query(
      `BEGIN; SAVEPOINT ddl; COMMENT ON TABLE public.prompts IS 'held'; RELEASE SAVEPOINT ddl`,
    );
    // A transaction committed after it, so the snapshot's xmax is past the savepoint's id.
    await run(`INSERT INTO public.prompts (body) VALUES ('committed meanwhile')`);
    const across = await structureNow();
    expect(await unchanged(across)).toBe(true);
    await holder.query('COMMIT');
    expect(await unchanged(across)).toEqual({ stale: 'pg_description has rows written since' });
    await run(`COMMENT ON TABLE public.prompts IS NULL`);

    const role = scratch.roleName('policy');
    await run(
      `CREATE ROLE "${role}"; CREATE POLICY readers ON public.object_models TO "${role}" USING (true)`,
    );
    const named = await structureNow();
    await run(`ALTER ROLE "${role}" RENAME TO "${role}_x"`);
    try {
      expect(await unchanged(named)).toEqual({ stale: 'a role a policy names was renamed or dropped' });
    } finally {
      // Back under the name the file's cleanup drops.
      await run(`ALTER ROLE "${role}_x" RENAME TO "${role}"; DROP POLICY readers ON public.object_models`);
    }
  });
});
