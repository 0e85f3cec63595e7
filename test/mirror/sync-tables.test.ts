import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { MirrorError, MirrorPolicyError } from '../../src/errors.js';
import { syncTables, tableChecksums } from '../../src/mirror/index.js';
import { adminQuery, useScratch } from '../helpers/databases.js';
import {
  ODD_TARGET_SETTINGS,
  POLICY,
  STRUCTURE_SQL,
  connectTo,
  productionSource,
} from './mirror-databases.js';

const scratch = useScratch('mirror_sync');
const MIRRORED = ['public.object_models', 'public.prompts'];

let source: pg.Client;
let sourceUrl: string;
const open: pg.Client[] = [];

async function freshTarget(label: string, settings = ODD_TARGET_SETTINGS): Promise<pg.Client> {
  const { url } = await scratch.database(label);
  const client = await connectTo(url, { settings });
  open.push(client);
  await client.query(STRUCTURE_SQL);
  return client;
}

beforeAll(async () => {
  ({ source, sourceUrl } = await productionSource(scratch, open));
});

afterAll(async () => {
  for (const client of open) await client.end().catch(() => undefined);
});

describe('syncTables', () => {
  it('copies every awkward value exactly, leaves structure-only tables empty and fires no trigger', async () => {
    const target = await freshTarget('exact');
    const result = await syncTables(source, target, { policy: POLICY });

    expect(result.tables).toEqual([
      { table: 'public.object_models', rowCount: 4 },
      { table: 'public.prompts', rowCount: 5 },
    ]);
    expect(await tableChecksums(target, MIRRORED)).toEqual(await tableChecksums(source, MIRRORED));
    const counts = await target.query(
      `SELECT (SELECT count(*) FROM public.projects) AS projects, (SELECT count(*) FROM public.clients) AS clients,
              (SELECT count(*) FROM project_alpha.entries) AS entries, (SELECT count(*) FROM public.trigger_log) AS fired`,
    );
    expect(counts.rows[0]).toEqual({ projects: '0', clients: '0', entries: '0', fired: '0' });

    // Spot checks that read as the values themselves, beside the checksums.
    const { rows } = await target.query(
      `SELECT body, body IS NULL AS body_null, label, label IS NULL AS label_null, label_upper, tags, raw, price::text
       FROM public.prompts p LEFT JOIN public.object_models m ON m.id = p.object_model_id ORDER BY p.id`,
    );
    expect(rows[0]).toMatchObject({
      body: 'tab\there\nnewline\r\nback\\slash \\N end',
      tags: [null, 'quo"te', 'com,ma', 'NULL', '', 'back\\slash', '{brace}'],
      raw: Buffer.from('00ff5c0a0d09', 'hex'),
      price: '12345678901234567890.123456789012345678',
      label_upper: 'ARTICLE',
    });
    expect(rows[1]).toMatchObject({ body: '', body_null: false, label: '', label_null: false });
    expect(rows[2]).toMatchObject({
      body: null,
      body_null: true,
      label: null,
      label_null: true,
      label_upper: null,
    });
    expect(rows[3]).toMatchObject({ body: '\\N', tags: ['\\N'], label: 'Ünïcødé 🚀 ñ 日本語 e\u0301' });
  });

  it('quick checksums agree on equal tables, differ from md5 ones, and see a case-only change', async () => {
    const target = await freshTarget('quick');
    await syncTables(source, target, { policy: POLICY });
    const quick = (client: pg.Client) => tableChecksums(client, MIRRORED, { quick: true });
    const synced = await quick(target);
    expect(synced).toEqual(await quick(source));
    expect(synced['public.object_models']!.checksum).not.toBe(
      (await tableChecksums(target, MIRRORED))['public.object_models']!.checksum,
    );

    await target.query(`UPDATE public.object_models SET label = 'ARTICLE' WHERE name = 'article'`);
    const changed = await quick(target);
    expect(changed['public.object_models']).toMatchObject({ rowCount: 4 });
    expect(changed['public.object_models']!.checksum).not.toBe(synced['public.object_models']!.checksum);
    expect(changed['public.prompts']).toEqual(synced['public.prompts']);
  });

  it('sets every owned sequence to the source value, identity and serial alike', async () => {
    const target = await freshTarget('sequences');
    await syncTables(source, target, { policy: POLICY });

    const next = `SELECT nextval('public.object_models_id_seq') AS serial, nextval(pg_get_serial_sequence('public.prompts', 'id')) AS identity`;
    const writable = await connectTo(sourceUrl);
    open.push(writable);
    expect((await target.query(next)).rows[0]).toEqual((await writable.query(next)).rows[0]);
  });

  it('keeps test rows of a structure-only table that reference mirrored rows, without a cascade', async () => {
    const target = await freshTarget('kept');
    await target.query(
      `INSERT INTO public.object_models (id, name) VALUES (1, 'test model'), (99, 'test only')`,
    );
    await target.query(`INSERT INTO public.projects (object_model_id, name) VALUES (1, 'test project')`);
    await target.query('TRUNCATE public.trigger_log');
    await syncTables(source, target, { policy: POLICY });

    expect((await target.query('SELECT count(*)::int AS fired FROM public.trigger_log')).rows).toEqual([
      { fired: 0 },
    ]);
    expect((await target.query('SELECT object_model_id, name FROM public.projects')).rows).toEqual([
      { object_model_id: 1, name: 'test project' },
    ]);
    expect(await tableChecksums(target, MIRRORED)).toEqual(await tableChecksums(source, MIRRORED));
  });

  it('refuses, naming the referencing table, when test rows would point at a row production lacks', async () => {
    const target = await freshTarget('dangling');
    await target.query(`INSERT INTO public.object_models (id, name) VALUES (99, 'test only')`);
    await target.query(`INSERT INTO public.projects (object_model_id, name) VALUES (99, 'orphan to be')`);
    const before = await tableChecksums(target, [...MIRRORED, 'public.projects']);

    const error = await syncTables(source, target, { policy: POLICY }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    expect((error as MirrorError).message).toMatch(
      /public\.projects with \{"object_model_id" : 99\} has no match in public\.object_models/,
    );
    expect(await tableChecksums(target, [...MIRRORED, 'public.projects'])).toEqual(before);
  });

  it('refuses structure-only tables and project schemas even with allowUnmirrored, before touching anything', async () => {
    const target = await freshTarget('policy');
    for (const [table, reason] of [
      ['public.projects', 'structure-only'],
      ['project_alpha.entries', 'project-schema'],
      ['public.trigger_log', 'unmirrored'],
    ] as const) {
      const error = await syncTables(source, target, { policy: POLICY, tables: [table] }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MirrorPolicyError);
      expect(error).toMatchObject({ table, reason });
      if (reason !== 'unmirrored') {
        await expect(
          syncTables(source, target, { policy: POLICY, tables: [table], allowUnmirrored: true }),
        ).rejects.toThrow(MirrorPolicyError);
      }
    }
    await syncTables(source, target, { policy: POLICY, tables: ['trigger_log'], allowUnmirrored: true });
  });

  it('names an unknown table and the closest existing one', async () => {
    const target = await freshTarget('unknown');
    const policy = { ...POLICY, mirror: { ...POLICY.mirror, full: ['public.promts'] } };
    const error = await syncTables(source, target, { policy }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    expect(error).toMatchObject({ table: 'public.promts' });
    expect((error as Error).message).toContain('did you mean "public.prompts"');
  });

  it('rolls the target back and leaves both connections usable when the target rejects the rows', async () => {
    const target = await freshTarget('rejects');
    await target.query(`INSERT INTO public.object_models (id, name) VALUES (7, 'kept')`);
    await target.query('ALTER TABLE public.prompts ALTER COLUMN body TYPE int USING NULL');

    const error = await syncTables(source, target, { policy: POLICY }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    expect(error).toMatchObject({ table: 'public.prompts' });
    expect((await target.query('SELECT id, name FROM public.object_models')).rows).toEqual([
      { id: 7, name: 'kept' },
    ]);
    expect((await source.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('rolls the target back and names the table when the source dies mid-copy', async () => {
    const { url } = await scratch.database('dying');
    const setup = await connectTo(url);
    await setup.query(`CREATE TABLE public.big (id int PRIMARY KEY, payload text)`);
    await setup.query(
      `INSERT INTO public.big SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 200000) AS i`,
    );
    await setup.end();
    const dying = await connectTo(url, { readOnly: true });
    open.push(dying);
    const target = await freshTarget('died');
    await target.query(`CREATE TABLE public.big (id int PRIMARY KEY, payload text)`);
    await target.query(`INSERT INTO public.big VALUES (1, 'before')`);
    const policy = { ...POLICY, mirror: { ...POLICY.mirror, full: ['public.big'] } };

    const sync = syncTables(dying, target, { policy }).catch((e: unknown) => e);
    const killer = await connectTo(url);
    open.push(killer);
    let terminated = false;
    while (!terminated) {
      const { rows } = await killer.query<{ done: boolean }>(
        `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'COPY (SELECT%"big"%' AND state = 'active'`,
      );
      terminated = rows.some((row) => row.done);
    }

    const error = await sync;
    expect(error).toBeInstanceOf(MirrorError);
    expect(error).toMatchObject({ table: 'public.big' });
    expect((error as Error).message).toMatch(/terminat/);
    expect((await target.query('SELECT id, payload FROM public.big')).rows).toEqual([
      { id: 1, payload: 'before' },
    ]);
  });

  it('tells a test user without the right to switch triggers off how to get it, and works once granted', async () => {
    const role = scratch.roleName('runner');
    const { name, url } = await scratch.database('role');
    await adminQuery(`CREATE ROLE "${role}" LOGIN; ALTER DATABASE "${name}" OWNER TO "${role}"`);
    const owner = new URL(url);
    owner.username = role;
    const target = await connectTo(owner.toString());
    open.push(target);
    await target.query(STRUCTURE_SQL);

    const error = await syncTables(source, target, { policy: POLICY }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MirrorError);
    expect((error as Error).message).toContain('GRANT SET ON PARAMETER session_replication_role');

    await adminQuery(`GRANT SET ON PARAMETER session_replication_role TO "${role}"`);
    await syncTables(source, target, { policy: POLICY });
    expect(await tableChecksums(target, MIRRORED)).toEqual(await tableChecksums(source, MIRRORED));
  });
});
