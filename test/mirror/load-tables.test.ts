import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import type pg from 'pg';
import { MirrorError } from '../../src/errors.js';
import { tableChecksums } from '../../src/mirror/index.js';
import { loadTables } from '../../src/mirror/load-tables.js';
import { parallelSessions, PARALLEL_SESSIONS } from '../../src/mirror/mirror-session.js';
import { verifyCrossingForeignKeys } from '../../src/mirror/replace-table-data.js';
import { applyStructure, compareSchemas, readStructure } from '../../src/structure/index.js';
import { splitStructure } from '../../src/structure/split-structure.js';
import type { StructureSnapshot } from '../../src/structure/structure-snapshot.js';
import { adminQuery, useScratch } from '../helpers/databases.js';
import {
  ODD_SOURCE_SETTINGS,
  ODD_TARGET_SETTINGS,
  POLICY,
  PRODUCTION_ROWS_SQL,
  STRUCTURE_SQL,
  connectTo,
} from './mirror-databases.js';

const scratch = useScratch('mirror_load');
const MIRRORED = ['public.object_models', 'public.prompts'];

let sourceUrl: string;
let snapshot: StructureSnapshot;
const open: pg.Client[] = [];

async function connect(url: string, options: Parameters<typeof connectTo>[1] = {}): Promise<pg.Client> {
  const client = await connectTo(url, options);
  open.push(client);
  return client;
}

const openSource = () => connect(sourceUrl, { readOnly: true, settings: ODD_SOURCE_SETTINGS });

/** A new database holding the source's tables without their keys, indexes, foreign keys and triggers. */
async function tablesOnly(label: string): Promise<{ url: string; target: pg.Client }> {
  const { url } = await scratch.database(label);
  const target = await connect(url, { settings: ODD_TARGET_SETTINGS });
  await applyStructure(target, splitStructure(snapshot).beforeData, { replace: true });
  return { url, target };
}

beforeAll(async () => {
  ({ url: sourceUrl } = await scratch.database('source'));
  const setup = await connect(sourceUrl);
  await setup.query(STRUCTURE_SQL);
  await setup.query(PRODUCTION_ROWS_SQL);
  snapshot = await readStructure(setup, { schemas: ['public', 'project_*'] });
});

afterAll(async () => {
  for (const client of open) await client.end().catch(() => undefined);
});

describe('loadTables', () => {
  it('loads the rows and sequences, small tables on one session; the keys and triggers created after give the source back', async () => {
    const { url, target } = await tablesOnly('exact');
    const sessions: string[] = [];
    const result = await loadTables(await openSource(), {
      policy: POLICY,
      openSource,
      openTarget: async () => {
        sessions.push('target');
        return connect(url, { settings: ODD_TARGET_SETTINGS });
      },
    });

    expect(result.tables.sort((a, b) => a.table.localeCompare(b.table))).toEqual([
      { table: 'public.object_models', rowCount: 4 },
      { table: 'public.prompts', rowCount: 5 },
    ]);
    // Nine rows: a second session would cost more than it saves (the large table below takes several).
    expect(sessions).toHaveLength(1);
    await verifyCrossingForeignKeys(target, snapshot.tables, new Set(MIRRORED));
    await applyStructure(target, splitStructure(snapshot).afterData);

    const source = await openSource();
    expect(await tableChecksums(target, MIRRORED)).toEqual(await tableChecksums(source, MIRRORED));
    const diff = await compareSchemas(source, target, { schemas: ['public', 'project_*'] });
    expect(diff.equal).toBe(true);
    // The rows went in before the trigger existed; the sequences carry on where the source's are.
    const fired = await target.query<{ n: string }>('SELECT count(*) AS n FROM public.trigger_log');
    expect(fired.rows[0]!.n).toBe('0');
    const next = await target.query<{ model: string; prompt: string }>(
      `SELECT nextval('public.object_models_id_seq')::text AS model,
              nextval(pg_get_serial_sequence('public.prompts', 'id'))::text AS prompt`,
    );
    expect(next.rows[0]).toEqual({ model: '41', prompt: '77' });
  });

  it('reads every table in the snapshot exported when it starts: a row committed meanwhile is not copied', async () => {
    const { url: ownSourceUrl } = await scratch.database('snapshot_source');
    const writer = await connect(ownSourceUrl);
    await writer.query(STRUCTURE_SQL);
    await writer.query(PRODUCTION_ROWS_SQL);
    const { url, target } = await tablesOnly('snapshot');
    const openOwnSource = () => connect(ownSourceUrl, { readOnly: true });
    const coordinator = await openOwnSource();
    const query = coordinator.query.bind(coordinator) as (...args: unknown[]) => Promise<unknown>;
    // Commit a row to each table once the snapshot is exported, before the other sessions join it.
    (coordinator as { query: unknown }).query = async (...args: unknown[]) => {
      const result = await query(...args);
      if (typeof args[0] === 'string' && args[0].includes('pg_export_snapshot')) {
        await writer.query(
          `INSERT INTO public.object_models (name) VALUES ('late'); INSERT INTO public.prompts (object_model_id) VALUES (1)`,
        );
      }
      return result;
    };
    const result = await loadTables(coordinator, {
      policy: POLICY,
      openSource: openOwnSource,
      openTarget: () => connect(url, { settings: ODD_TARGET_SETTINGS }),
    });

    expect(Object.fromEntries(result.tables.map((t) => [t.table, t.rowCount]))).toEqual({
      'public.object_models': 4,
      'public.prompts': 5,
    });
    const counts = await target.query<{ models: string; prompts: string }>(
      'SELECT (SELECT count(*) FROM public.object_models) AS models, (SELECT count(*) FROM public.prompts) AS prompts',
    );
    expect(counts.rows[0]).toEqual({ models: '4', prompts: '5' });
    const now = await writer.query<{ models: string }>('SELECT count(*) AS models FROM public.object_models');
    expect(now.rows[0]!.models).toBe('5');
  });

  it('loads a large table as ranges of pages over several sessions, every row exactly once', async () => {
    const table = `CREATE TABLE public.big (id int, body text, doubled int GENERATED ALWAYS AS (id * 2) STORED)`;
    const { url: bigSourceUrl } = await scratch.database('big_source');
    const writer = await connect(bigSourceUrl);
    await writer.query(
      `${table}; INSERT INTO public.big (id, body) SELECT i, repeat(md5(i::text), 2) FROM generate_series(1, 30000) AS i`,
    );
    const { url } = await scratch.database('big_target');
    const target = await connect(url);
    await target.query(table);
    let targets = 0;
    const policy = { ...POLICY, mirror: { ...POLICY.mirror, full: ['public.big'] } };
    const openBigSource = () => connect(bigSourceUrl, { readOnly: true });
    const result = await loadTables(await openBigSource(), {
      policy,
      openSource: openBigSource,
      openTarget: () => {
        targets++;
        return connect(url);
      },
    });

    expect(result.tables).toEqual([{ table: 'public.big', rowCount: 30000 }]);
    // About 400 pages: three ranges of at least 128, a pair of sessions each.
    expect(targets).toBe(3);
    expect(await tableChecksums(target, ['public.big'])).toEqual(
      await tableChecksums(await openBigSource(), ['public.big']),
    );
  });

  it('copies and checksums with the sessions the server lets it open, when it has no slot for more', async () => {
    const table = `CREATE TABLE public.big (id int, body text)`;
    const { url: bigSourceUrl } = await scratch.database('slots_source');
    const writer = await connect(bigSourceUrl);
    await writer.query(
      `${table}; INSERT INTO public.big (id, body) SELECT i, repeat(md5(i::text), 2) FROM generate_series(1, 30000) AS i`,
    );
    const { url } = await scratch.database('slots_target');
    // A role the server lets open one session: the other pairs are refused (too_many_connections).
    const role = scratch.roleName('slots');
    await adminQuery(`CREATE ROLE "${role}" LOGIN CONNECTION LIMIT 1`);
    const target = await connect(url);
    await target.query(`${table}; ALTER TABLE public.big OWNER TO "${role}"`);
    const limited = Object.assign(new URL(url), { username: role }).toString();
    const openBigSource = () => connect(bigSourceUrl, { readOnly: true });
    const policy = { ...POLICY, mirror: { ...POLICY.mirror, full: ['public.big'] } };
    let refused = 0;
    let attempts = 0;
    // The pair that gets the slot waits until another pair has tried for one: on a loaded machine the first
    // pair could otherwise copy everything and give the slot back before the next even asks.
    let secondTried!: () => void;
    const tried = new Promise<void>((resolve) => (secondTried = resolve));
    const result = await loadTables(await openBigSource(), {
      policy,
      openSource: openBigSource,
      openTarget: async () => {
        const attempt = ++attempts;
        try {
          const client = await connect(limited);
          if (attempt === 1)
            await Promise.race([tried, new Promise((resolve) => setTimeout(resolve, 10_000))]);
          return client;
        } catch (error) {
          if ((error as { code?: string }).code === '53300') refused++;
          throw error;
        } finally {
          if (attempt === 2) secondTried();
        }
      },
    });

    expect(result.tables).toEqual([{ table: 'public.big', rowCount: 30000 }]);
    expect(refused).toBeGreaterThan(0);
    expect(await tableChecksums(target, ['public.big'])).toEqual(
      await tableChecksums(await openBigSource(), ['public.big']),
    );

    // Checksums over parallel sessions: the one the role may open reads every range. The copy's last session
    // has said goodbye, but the server counts it against the limit until its backend has exited.
    const coordinator = await connectOnceFree(limited);
    expect(
      await tableChecksums(coordinator, ['public.big'], { openSession: () => connect(limited) }),
    ).toEqual(await tableChecksums(await openBigSource(), ['public.big']));
    await coordinator.end();

    // None at all: the server's refusal.
    await adminQuery(`ALTER ROLE "${role}" CONNECTION LIMIT 0`);
    await target.query('TRUNCATE public.big');
    const error = await loadTables(await openBigSource(), {
      policy,
      openSource: openBigSource,
      openTarget: () => connect(limited),
    }).catch((caught: unknown) => caught);
    expect((error as { code?: string }).code).toBe('53300');
  });

  it('names the table to mirror too when loaded rows reference a table that is not loaded', async () => {
    const { url, target } = await tablesOnly('crossing');
    const policy = { ...POLICY, mirror: { ...POLICY.mirror, full: ['public.prompts'] } };
    const result = await loadTables(await openSource(), {
      policy,
      openSource,
      openTarget: () => connect(url),
    });
    expect(result.tables).toEqual([{ table: 'public.prompts', rowCount: 5 }]);
    const failure = await verifyCrossingForeignKeys(
      target,
      snapshot.tables,
      new Set(['public.prompts']),
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(MirrorError);
    expect((failure as MirrorError).message).toMatch(/Mirror public\.object_models too/);
  });
});

describe('parallelSessions', () => {
  it('gives a server on this machine at most its cores, and one elsewhere the default', () => {
    const here = Math.min(PARALLEL_SESSIONS, availableParallelism());
    expect(parallelSessions('127.0.0.1')).toBe(here);
    expect(parallelSessions('localhost')).toBe(here);
    expect(parallelSessions('/var/run/postgresql')).toBe(here);
    expect(parallelSessions('db.example.com')).toBe(PARALLEL_SESSIONS);
  });
});

/** Connects to `url` as soon as its role's connection limit lets it (10 s at most). */
async function connectOnceFree(url: string): Promise<pg.Client> {
  for (let waited = 0; ; waited += 20) {
    try {
      return await connect(url);
    } catch (error) {
      if ((error as { code?: string }).code !== '53300' || waited >= 10_000) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
