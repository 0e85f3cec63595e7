import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/connection/connect.js';
import {
  baselineFile,
  captureBaseline,
  readBaseline,
  unchangedChecksums,
  writeBaseline,
  type ChecksumBaseline,
} from '../../src/mirror/checksum-baseline.js';
import { tableChecksums } from '../../src/mirror/table-checksum.js';
import { readProductionFingerprint } from '../../src/pipeline/read-production-fingerprint.js';
import type { Logger } from '../../src/util/logger.js';
import { testConfig } from '../helpers/config.js';
import { databaseUrl, useScratch } from '../helpers/databases.js';
import { PRODUCTION_ROWS_SQL, STRUCTURE_SQL, useTempDirs } from './mirror-databases.js';

const scratch = useScratch('baseline');
const tempDir = useTempDirs();
const MIRRORED = ['public.object_models', 'public.prompts'];
const open: pg.Client[] = [];
let production: string;

async function client(): Promise<pg.Client> {
  const opened = new pg.Client({ connectionString: databaseUrl(production) });
  await opened.connect();
  open.push(opened);
  return opened;
}

/** A baseline of production now, as a reading of the fingerprint takes it, with structure `structure`. */
async function baselineNow(structure = 'S'): Promise<ChecksumBaseline> {
  const reader = await client();
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
}

async function reused(baseline: ChecksumBaseline, structure = 'S') {
  return unchangedChecksums(await client(), baseline, MIRRORED, Promise.resolve(structure));
}

async function run(sql: string): Promise<void> {
  await (await client()).query(sql);
}

beforeAll(async () => {
  ({ name: production } = await scratch.database('prod'));
  await run(STRUCTURE_SQL);
  await run(PRODUCTION_ROWS_SQL);
});

afterAll(async () => {
  for (const opened of open) await opened.end().catch(() => undefined);
});

describe('checksum baseline', () => {
  it('gives the checksums back while no row is written, and they equal a fresh hash of every row', async () => {
    const baseline = await baselineNow();
    const fresh = await tableChecksums(await client(), MIRRORED, { quick: true });
    expect(await reused(baseline)).toEqual({ data: fresh });
    // A row inserted and deleted again leaves the same rows: still provably unchanged, and still right.
    await run(`INSERT INTO public.prompts (body) VALUES ('gone again')`);
    await run(`DELETE FROM public.prompts WHERE id = (SELECT max(id) FROM public.prompts)`);
    expect(await reused(baseline)).toEqual({
      data: await tableChecksums(await client(), MIRRORED, { quick: true }),
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
      await unchangedChecksums(await client(), baseline, ['public.prompts'], Promise.resolve('S')),
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
      const structure = await connect(config.production, 'production');
      open.push(structure);
      const result = await readProductionFingerprint(config, structure, { fresh, logger });
      return { ...result, reused: lines.some((line) => line.includes('checksums reused')) };
    };
    const first = await read();
    expect(first.reused).toBe(false);
    expect(lines).toContain('fingerprint data: hashing every mirrored row (no reading kept)');
    const second = await read();
    expect(second).toEqual({ ...first, reused: true });
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
  });
});
