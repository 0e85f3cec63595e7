import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { MirrorError } from '../../src/errors.js';
import { compareMirror, renderMirrorDrift, syncTables } from '../../src/mirror/index.js';
import { useScratch } from '../helpers/databases.js';
import {
  ODD_SOURCE_SETTINGS,
  POLICY,
  PRODUCTION_ROWS_SQL,
  STRUCTURE_SQL,
  connectTo,
} from './mirror-databases.js';

const scratch = useScratch('mirror_drift');
const MIRRORED = ['public.object_models', 'public.prompts'];
let source: pg.Client;
let target: pg.Client;

beforeAll(async () => {
  const [sourceDb, targetDb] = [await scratch.database('source'), await scratch.database('target')];
  source = await connectTo(sourceDb.url, { settings: ODD_SOURCE_SETTINGS });
  target = await connectTo(targetDb.url);
  for (const client of [source, target]) {
    await client.query(STRUCTURE_SQL);
    await client.query('CREATE TABLE public.keyless (v text)');
  }
  await source.query(PRODUCTION_ROWS_SQL);
  await source.query(`INSERT INTO public.keyless VALUES ('a'), ('b')`);
});

afterAll(async () => {
  await source.end();
  await target.end();
});

describe('compareMirror', () => {
  it('reports a fresh mirror as the same', async () => {
    await syncTables(source, target, {
      policy: { ...POLICY, mirror: { ...POLICY.mirror, full: [...MIRRORED, 'public.keyless'] } },
    });
    const drift = await compareMirror(source, target, [...MIRRORED, 'keyless']);
    expect(drift.same).toBe(true);
    expect(drift.tables.map((t) => [t.table, t.same, t.source.rowCount])).toEqual([
      ['public.object_models', true, 4],
      ['public.prompts', true, 5],
      ['public.keyless', true, 2],
    ]);
    expect(renderMirrorDrift(drift)).toBe(
      [
        'public.object_models  same: 4 rows',
        'public.prompts        same: 5 rows',
        'public.keyless        same: 2 rows',
      ].join('\n'),
    );
  });

  it('names the keys added, removed and changed, capped, and says when a table has no key to name', async () => {
    await target.query('SET session_replication_role = replica');
    await target.query(`UPDATE public.prompts SET ratio = ratio + 1e-15 WHERE id = 1`); // below default float display
    await target.query(`UPDATE public.prompts SET body = NULL WHERE id = 2`); // '' became NULL
    await target.query(`DELETE FROM public.prompts WHERE id = 5`);
    await target.query(
      `INSERT INTO public.prompts (id, body) OVERRIDING SYSTEM VALUE SELECT i, 'x' FROM generate_series(100, 130) AS i`,
    );
    await target.query(`UPDATE public.keyless SET v = 'c' WHERE v = 'b'`);
    await target.query('RESET session_replication_role');

    const drift = await compareMirror(source, target, MIRRORED.concat('public.keyless'), { keyLimit: 3 });
    const prompts = drift.tables[1]!;
    expect(drift.same).toBe(false);
    expect(drift.tables[0]!.same).toBe(true);
    expect(prompts.rows).toEqual({
      added: { count: 31, keys: [{ id: 100 }, { id: 101 }, { id: 102 }] },
      removed: { count: 1, keys: [{ id: 5 }] },
      changed: { count: 2, keys: [{ id: 1 }, { id: 2 }] },
    });
    expect(drift.tables[2]).toMatchObject({
      same: false,
      rows: null,
      source: { rowCount: 2 },
      target: { rowCount: 2 },
    });
    expect(renderMirrorDrift(drift).split('\n')).toEqual([
      'public.object_models  same: 4 rows',
      'public.prompts        differs: source 5 rows, target 35 rows',
      '  added 31: id=100, id=101, id=102 and 28 more',
      '  removed 1: id=5',
      '  changed 2: id=1, id=2',
      'public.keyless        differs: source 2 rows, target 2 rows',
      '  no primary key: cannot name the rows that differ',
    ]);
  });

  it('names an unknown table', async () => {
    const error = await compareMirror(source, target, ['public.object_model']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    expect(error).toMatchObject({ table: 'public.object_model' });
    expect((error as Error).message).toContain('did you mean "public.object_models"');
    expect((await source.query('SELECT 1 AS usable')).rows).toEqual([{ usable: 1 }]);
  });
});
