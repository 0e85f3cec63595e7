import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlScriptError } from '../../src/errors.js';
import { applySqlScripts } from '../../src/structure/index.js';
import { useScratch } from '../helpers/databases.js';

const scratch = useScratch('scripts');
let client: pg.Client;
let dir: string;

beforeAll(async () => {
  client = new pg.Client({ connectionString: (await scratch.database()).url });
  await client.connect();
  dir = await mkdtemp(join(tmpdir(), 'pgtwin-scripts-'));
});

afterAll(async () => {
  await client?.end();
  await rm(dir, { recursive: true, force: true });
});

async function scripts(name: string, files: Record<string, string>): Promise<string> {
  const folder = join(dir, name);
  await rm(folder, { recursive: true, force: true });
  await mkdir(folder);
  for (const [file, sql] of Object.entries(files)) await writeFile(join(folder, file), sql);
  return folder;
}

describe('applySqlScripts', () => {
  it('applies the .sql files of a directory in name order', async () => {
    const folder = await scripts('good', {
      '010_tables.sql':
        'CREATE TABLE IF NOT EXISTS public.things (id int PRIMARY KEY, kind public.thing_kind);',
      '001_types.sql':
        "DO $$ BEGIN CREATE TYPE public.thing_kind AS ENUM ('a'); EXCEPTION WHEN duplicate_object THEN END $$;",
      'README.md': 'not a script',
    });
    expect(await applySqlScripts(client, folder)).toEqual([
      join(folder, '001_types.sql'),
      join(folder, '010_tables.sql'),
    ]);
    await applySqlScripts(client, folder); // idempotent scripts may run again
    expect((await client.query("SELECT to_regclass('public.things') IS NOT NULL AS ok")).rows).toEqual([
      { ok: true },
    ]);
  });

  it('names the failing file with the database message and applies none of them', async () => {
    const folder = await scripts('bad', {
      '001_ok.sql': 'CREATE TABLE public.first_script (id int);',
      '002_broken.sql': 'CREATE TABLE public.second_script (id int REFERENCES public.missing (id));',
    });
    const error = await applySqlScripts(client, folder).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SqlScriptError);
    expect((error as SqlScriptError).file).toBe(join(folder, '002_broken.sql'));
    expect((error as Error).message).toContain('relation "public.missing" does not exist');
    expect((await client.query("SELECT to_regclass('public.first_script') IS NULL AS absent")).rows).toEqual([
      { absent: true },
    ]);
  });
});
