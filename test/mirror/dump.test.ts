import { readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { DumpError, MirrorPolicyError } from '../../src/errors.js';
import { createDump, restoreDump, tableChecksums, type DumpManifest } from '../../src/mirror/index.js';
import { useScratch } from '../helpers/databases.js';
import { POLICY, connectTo, productionSource, useTempDirs } from './mirror-databases.js';

const scratch = useScratch('mirror_dump');
const MIRRORED = ['public.object_models', 'public.prompts'];
const open: pg.Client[] = [];
const tempDir = useTempDirs();
let source: pg.Client;
let plainDir: string;
let plain: DumpManifest;

async function fresh(label: string): Promise<pg.Client> {
  const { url } = await scratch.database(label);
  const client = await connectTo(url);
  open.push(client);
  return client;
}

async function copyOfDump(): Promise<string> {
  const dir = await tempDir('pgtwin-dump-');
  await createDump({ source, dir, policy: POLICY });
  return dir;
}

beforeAll(async () => {
  ({ source } = await productionSource(scratch, open));
  plainDir = await tempDir('pgtwin-dump-');
  plain = await createDump({ source, dir: plainDir, policy: POLICY });
});

afterAll(async () => {
  for (const client of open) await client.end().catch(() => undefined);
});

describe('createDump and restoreDump', () => {
  it('writes a manifest with structure fingerprint, row counts, file digests and content checksums', async () => {
    const sums = await tableChecksums(source, MIRRORED);
    expect(plain).toMatchObject({ format: 'pgtwin-dump', formatVersion: 1, pgtwinVersion: '0.1.0' });
    expect(plain.structure).toMatchObject({
      file: 'structure.json',
      fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(plain.tables.map((t) => [t.table, t.file, t.rowCount, t.checksum])).toEqual([
      ['public.object_models', 'data/public.object_models.copy', 4, sums['public.object_models']!.checksum],
      ['public.prompts', 'data/public.prompts.copy', 5, sums['public.prompts']!.checksum],
    ]);
    expect(plain.tables[0]!.columns).toEqual(['id', 'name', 'label']); // the generated label_upper is recomputed
    expect(JSON.parse(await readFile(path.join(plainDir, 'manifest.json'), 'utf8'))).toEqual(plain);
  });

  it('restores into a fresh database identical to the source, sequences included, triggers silent', async () => {
    for (const gzip of [false, true]) {
      const dir = gzip ? await tempDir('pgtwin-dump-') : plainDir;
      if (gzip) await createDump({ source, dir, policy: POLICY, gzip: true });
      const target = await fresh(gzip ? 'gzip' : 'plain');

      const result = await restoreDump({ dir, target, policy: POLICY });
      expect(result.tables).toEqual([
        { table: 'public.object_models', rowCount: 4 },
        { table: 'public.prompts', rowCount: 5 },
      ]);
      expect(await tableChecksums(target, MIRRORED)).toEqual(await tableChecksums(source, MIRRORED));
      const { rows } = await target.query(
        `SELECT (SELECT count(*) FROM public.projects) AS projects, (SELECT count(*) FROM project_alpha.entries) AS entries,
                (SELECT count(*) FROM public.trigger_log) AS fired,
                nextval('public.object_models_id_seq') AS serial, nextval(pg_get_serial_sequence('public.prompts', 'id')) AS identity`,
      );
      expect(rows[0]).toEqual({ projects: '0', entries: '0', fired: '0', serial: '41', identity: '77' });
    }
  });

  it('refuses a corrupted data file before writing anything, naming the file', async () => {
    const dir = await copyOfDump();
    const file = path.join(dir, 'data/public.prompts.copy');
    const bytes = await readFile(file);
    bytes[10] = bytes[10] === 0x31 ? 0x32 : 0x31;
    await writeFile(file, bytes);
    const target = await fresh('corrupt');

    const error = await restoreDump({ dir, target, policy: POLICY }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DumpError);
    expect(error).toMatchObject({ file: 'data/public.prompts.copy' });
    expect((error as Error).message).toMatch(/corrupted/);
    expect(
      (await target.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`)).rows,
    ).toEqual([{ n: 0 }]);
  });

  it('refuses a truncated file, naming it', async () => {
    const dir = await copyOfDump();
    await truncate(path.join(dir, 'structure.json'), 100);
    const error = await restoreDump({ dir, target: await fresh('truncated'), policy: POLICY }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DumpError);
    expect(error).toMatchObject({ file: 'structure.json' });
    expect((error as Error).message).toMatch(/truncated/);
  });

  it('refuses a dump whose manifest was edited to load a structure-only table', async () => {
    const dir = await copyOfDump();
    const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as DumpManifest;
    manifest.tables[0]!.table = 'public.projects';
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    await expect(restoreDump({ dir, target: await fresh('edited'), policy: POLICY })).rejects.toThrow(
      MirrorPolicyError,
    );
  });

  it('refuses a missing manifest and a directory that is not a dump', async () => {
    const empty = await tempDir('pgtwin-dump-');
    await expect(restoreDump({ dir: empty, target: source, policy: POLICY })).rejects.toMatchObject({
      file: 'manifest.json',
    });
    await writeFile(path.join(empty, 'notes.txt'), 'mine');
    await expect(createDump({ source, dir: empty, policy: POLICY })).rejects.toThrow(DumpError);
  });
});
