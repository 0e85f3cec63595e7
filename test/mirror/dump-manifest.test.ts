import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DumpError } from '../../src/errors.js';
import { createDump, restoreDump, type DumpManifest } from '../../src/mirror/index.js';
import { cliEnv, runCli } from '../cli/run-cli.js';
import { useScratch } from '../helpers/databases.js';
import { POLICY, PRODUCTION_ROWS_SQL, STRUCTURE_SQL, connectTo, useTempDirs } from './mirror-databases.js';

const scratch = useScratch('dump_manifest');
const tempDir = useTempDirs();
const open: pg.Client[] = [];
let source: pg.Client;
let original: string;
let target: pg.Client;

beforeAll(async () => {
  const { url } = await scratch.database('source');
  const setup = await connectTo(url);
  await setup.query(STRUCTURE_SQL);
  await setup.query(PRODUCTION_ROWS_SQL);
  await setup.end();
  source = await connectTo(url, { readOnly: true });
  open.push(source);
  original = await tempDir('pgtwin-dump-');
  await createDump({ source, dir: original, policy: POLICY });
  target = await connectTo((await scratch.database('target')).url);
  open.push(target);
});

afterAll(async () => {
  for (const client of open) await client.end().catch(() => undefined);
});

/** A copy of the dump whose manifest `edit` changed (in place). */
async function tampered(edit: (manifest: DumpManifest & Record<string, unknown>) => void): Promise<string> {
  const dir = await tempDir('pgtwin-dump-');
  await cp(original, dir, { recursive: true });
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as DumpManifest & Record<string, unknown>;
  edit(manifest);
  await writeFile(file, JSON.stringify(manifest, null, 2));
  return dir;
}

async function restoreError(dir: string): Promise<DumpError> {
  const error = await restoreDump({ dir, target, policy: POLICY }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(DumpError);
  return error as DumpError;
}

async function targetTables(): Promise<number> {
  const { rows } = await target.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`,
  );
  return rows[0]!.n;
}

describe('manifest.json is checked against the dump format when read', () => {
  test.each<{
    name: string;
    edit: (manifest: DumpManifest & Record<string, unknown>) => void;
    field: string;
    message: RegExp;
  }>([
    {
      name: 'a file that is not a string',
      edit: (m) => Object.assign(m.tables[1]!, { file: 42 }),
      field: 'tables[1].file',
      message:
        /tables\[1\]\.file must be a relative path inside the dump directory, such as "data\/public\.prompts\.copy" \(no "\.\.", no absolute path\), found the number 42\. Write the dump again with createDump/,
    },
    {
      name: 'a missing structure.file',
      edit: (m) => delete (m.structure as Partial<DumpManifest['structure']>).file,
      field: 'structure.file',
      message: /structure\.file must be a relative path .*, found nothing \(the field is missing\)/,
    },
    {
      name: 'columns that are not an array',
      edit: (m) => Object.assign(m.tables[0]!, { columns: 'id,name,label' }),
      field: 'tables[0].columns',
      message:
        /tables\[0\]\.columns must be a non-empty array of column names, found the string "id,name,label"/,
    },
    {
      name: 'a data file outside the dump directory',
      edit: (m) => Object.assign(m.tables[0]!, { file: '../outside.copy' }),
      field: 'tables[0].file',
      message:
        /tables\[0\]\.file must be a relative path inside the dump directory.*found the string "\.\.\/outside\.copy"/,
    },
    {
      name: 'an absolute data file path',
      edit: (m) => Object.assign(m.tables[1]!, { file: '/etc/passwd' }),
      field: 'tables[1].file',
      message: /found the string "\/etc\/passwd"/,
    },
    {
      name: 'a sequence value that is not a bigint',
      edit: (m) => Object.assign(m.tables[0]!.sequences[0]!, { lastValue: 'ten' }),
      field: 'tables[0].sequences[0].lastValue',
      message:
        /tables\[0\]\.sequences\[0\]\.lastValue must be a bigint as decimal text, such as "42", found the string "ten"/,
    },
    {
      name: 'a sequence of a column the table does not dump',
      edit: (m) => Object.assign(m.tables[0]!.sequences[0]!, { column: 'nope' }),
      field: 'tables[0].sequences[0].column',
      message: /must be one of the table's columns \(id, name, label\), found the string "nope"/,
    },
    {
      name: 'an unknown compression',
      edit: (m) => Object.assign(m.tables[1]!, { compression: 'zstd' }),
      field: 'tables[1].compression',
      message: /tables\[1\]\.compression must be null or "gzip", found the string "zstd"/,
    },
    {
      name: 'tables that are not an array',
      edit: (m) => Object.assign(m, { tables: { 'public.prompts': {} } }),
      field: 'tables',
      message: /tables must be an array of tables, found an object \{"public\.prompts":\{\}\}/,
    },
  ])('refuses $name with a DumpError naming the field', async ({ edit, field, message }) => {
    const dir = await tampered(edit);
    const error = await restoreError(dir);
    expect({ file: error.file, field: error.field }).toEqual({ file: 'manifest.json', field });
    expect(error.message).toMatch(message);
    expect(error.message).toContain(
      `manifest.json in ${dir} is not a valid pgtwin dump manifest: ${field} must be`,
    );
    expect(await targetTables()).toBe(0);
  });

  test('refuses a data file that leads out of the dump directory through a symbolic link', async () => {
    const dir = await tampered(() => undefined);
    const outside = await tempDir('pgtwin-outside-');
    await cp(path.join(dir, 'data/public.prompts.copy'), path.join(outside, 'prompts.copy'));
    await rm(path.join(dir, 'data/public.prompts.copy'));
    await symlink(path.join(outside, 'prompts.copy'), path.join(dir, 'data/public.prompts.copy'));

    const error = await restoreError(dir);
    expect({ file: error.file, field: error.field }).toEqual({
      file: 'data/public.prompts.copy',
      field: 'tables[1].file',
    });
    expect(error.message).toMatch(
      /tables\[1\]\.file in manifest\.json names data\/public\.prompts\.copy, which leads out of the dump directory .* through a symbolic link\. A dump reads only its own files/,
    );

    // A linked directory on the way is caught the same way.
    const linkedDir = await tampered(() => undefined);
    const data = await tempDir('pgtwin-outside-');
    await cp(path.join(linkedDir, 'data'), data, { recursive: true });
    await rm(path.join(linkedDir, 'data'), { recursive: true });
    await symlink(data, path.join(linkedDir, 'data'));
    expect((await restoreError(linkedDir)).field).toBe('tables[0].file');
    expect(await targetTables()).toBe(0);
  });

  test('a symbolic link that stays inside the dump directory is fine', async () => {
    const dir = await tampered(() => undefined);
    await mkdir(path.join(dir, 'moved'));
    await cp(path.join(dir, 'data/public.prompts.copy'), path.join(dir, 'moved/prompts.copy'));
    await rm(path.join(dir, 'data/public.prompts.copy'));
    await symlink('../moved/prompts.copy', path.join(dir, 'data/public.prompts.copy'));
    const fresh = await connectTo((await scratch.database('linked')).url);
    open.push(fresh);
    await expect(restoreDump({ dir, target: fresh, policy: POLICY })).resolves.toMatchObject({
      tables: [
        { table: 'public.object_models', rowCount: 4 },
        { table: 'public.prompts', rowCount: 5 },
      ],
    });
  });

  test('refuses a sequence value outside the sequence range, naming the sequence and the table; nothing changes', async () => {
    const dir = await tampered((m) => Object.assign(m.tables[0]!.sequences[0]!, { lastValue: '-5' }));
    const error = await restoreError(dir);
    expect({ file: error.file, field: error.field }).toEqual({
      file: 'manifest.json',
      field: 'tables[0].sequences[0].lastValue',
    });
    expect(error.message).toBe(
      'tables[0].sequences[0].lastValue in manifest.json sets sequence public.object_models_id_seq (of public.object_models.id) to -5, outside its range 1 to 2147483647. Nothing was changed; write the dump again rather than editing it.',
    );
    expect(await targetTables()).toBe(0);
  });

  test('refuses a sequence on a column that draws from none, and a column the table does not have', async () => {
    const sequence = await tampered((m) => Object.assign(m.tables[0]!.sequences[0]!, { column: 'name' }));
    const noSequence = await restoreError(sequence);
    expect(noSequence.field).toBe('tables[0].sequences[0].column');
    expect(noSequence.message).toMatch(
      /is "name", but public\.object_models\.name draws from no sequence in the dump's structure/,
    );

    const column = await tampered((m) => m.tables[0]!.columns.splice(1, 1, 'nmae'));
    const unknown = await restoreError(column);
    expect(unknown.field).toBe('tables[0].columns[1]');
    expect(unknown.message).toMatch(
      /tables\[0\]\.columns\[1\] in manifest\.json is "nmae", which is not a column of public\.object_models that a dump holds \(id, name, label\)/,
    );
    expect(await targetTables()).toBe(0);
  });

  test('pgtwin restore exits 1 with the DumpError and its field on one line, before touching any database', async () => {
    const dir = await tampered((m) => Object.assign(m.tables[1]!, { file: '../outside.copy' }));
    // Nothing is reachable here: the manifest is refused before any connection.
    const env = cliEnv({ DB_NAME: 'pgtwin_never', TEST_DB_NAME: 'pgtwin_never_test', TEST_DB_PORT: '1' });
    const result = await runCli(['restore', dir, '--json'], { env });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('tables[1].file must be a relative path inside the dump directory');
    expect(result.json()).toMatchObject({
      ok: false,
      exitCode: 1,
      error: { name: 'DumpError', details: { file: 'manifest.json', field: 'tables[1].file' } },
    });
  });
});
