import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_SEED_MAX_COUNT, DEFAULT_SEED_MAX_ROWS } from '../../src/config/index.js';
import { SeedError } from '../../src/errors.js';
import { checkSeedData } from '../../src/seed/check-seed-data.js';
import { loadSeedData } from '../../src/seed/index.js';
import { MAX_SEED_DEPTH } from '../../src/seed/seed-source.js';
import type { SeedLimitsConfig } from '../../src/config/pgtwin-config.js';
import { cliEnv, emptyDir, runCli } from '../cli/run-cli.js';
import { useContentgenDatabases } from './contentgen-database.js';

const databases = useContentgenDatabases('seedbad');
let directory: string;
let client: pg.Client;
let production: string;

beforeAll(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), 'pgtwin-seed-bad-'));
  ({ client, name: production } = await databases.fresh());
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

interface Expected {
  path: string;
  line: number;
  column: number;
  message: RegExp;
}

let files = 0;

/** 1-based line and column of the first `marker` in `text`. */
function at(text: string, marker: string): { line: number; column: number } {
  const before = text.slice(0, text.indexOf(marker)).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

/**
 * Writes `text` as a seed file, then loads it and plans it as `pgtwin doctor` does (checkSeedData), and
 * expects the same SeedError from both, with nothing loaded.
 */
async function expectSeedError(text: string, expected: Expected, limits?: SeedLimitsConfig): Promise<void> {
  const file = `seed-${++files}.json`;
  await writeFile(path.join(directory, file), text);
  const counts = async () =>
    (
      await client.query(
        `SELECT (SELECT count(*)::int FROM public.clients) AS clients, (SELECT count(*)::int FROM public.projects) AS projects`,
      )
    ).rows[0] as unknown;
  const before = await counts();
  const loaded = await loadSeedData(client, file, { rootDir: directory, limits }).catch((e: unknown) => e);
  const checked = await checkSeedData(client, file, { rootDir: directory, limits }).catch((e: unknown) => e);
  for (const error of [loaded, checked]) {
    expect(error).toBeInstanceOf(SeedError);
    const seedError = error as SeedError;
    expect({
      file: seedError.file,
      path: seedError.path,
      line: seedError.line,
      column: seedError.column,
    }).toEqual({ file, path: expected.path, line: expected.line, column: expected.column });
    expect(
      seedError.message.startsWith(`${file}:${expected.line}:${expected.column} ${expected.path}: `),
    ).toBe(true);
    expect(seedError.message).toMatch(expected.message);
  }
  expect(await counts()).toEqual(before);
}

describe('nesting', () => {
  test(`refuses JSON nested 5,000 levels with a SeedError at the level past ${MAX_SEED_DEPTH}, not a stack overflow`, async () => {
    const prefix = '{"public.projects": [{"settings": ';
    const text = `${prefix}${'['.repeat(5000)}${']'.repeat(5000)}}]}`;
    // Root, table array and row are levels 1-3; the settings arrays start at level 4.
    const zeros = Array.from({ length: MAX_SEED_DEPTH - 3 }, () => '[0]').join('');
    await expectSeedError(text, {
      path: `$["public.projects"][0].settings${zeros}`,
      line: 1,
      column: prefix.length + (MAX_SEED_DEPTH - 3) + 1,
      message:
        /Objects and arrays nest more than 100 levels deep here; seed files may nest at most 100\. Flatten the value/,
    });
  });

  test('refuses deep nesting in a file that is not valid JSON either, rather than overflowing while locating the syntax error', async () => {
    await expectSeedError(`{\n  "a": ${'{"b": '.repeat(5000)}`, {
      // Level n (the root is 1) is the (n - 1)th opening brace of line 2.
      path: `$.a${'.b'.repeat(MAX_SEED_DEPTH - 1)}`,
      line: 2,
      column: 8 + 6 * (MAX_SEED_DEPTH - 1),
      message: /nest more than 100 levels/,
    });
  });

  test(`accepts ${MAX_SEED_DEPTH} levels`, async () => {
    const inner = MAX_SEED_DEPTH - 3;
    const file = 'deep-ok.json';
    await writeFile(
      path.join(directory, file),
      JSON.stringify({
        'public.clients': [{ $key: 'deep', name: 'Deep', slug: 'deep' }],
        'public.projects': [
          {
            slug: 'deep',
            name: 'Deep',
            client_id: { $ref: 'public.clients.deep' },
            settings: JSON.parse(`${'['.repeat(inner)}${']'.repeat(inner)}`) as unknown,
          },
        ],
      }),
    );
    await expect(checkSeedData(client, file, { rootDir: directory })).resolves.toMatchObject({ rows: 2 });
  });
});

describe('$count and total rows', () => {
  test(`refuses "$count": 1000000000 past the default ${DEFAULT_SEED_MAX_COUNT} per entry, saying how to raise it`, async () => {
    await expectSeedError(
      '{\n  "public.projects": [\n    { "$count": 1000000000, "client_id": 1 }\n  ]\n}\n',
      {
        path: '$["public.projects"][0].$count',
        line: 3,
        column: 7,
        message:
          /"\$count": 1000000000 is more than the 100,000 rows one entry may build\. Ask for fewer, or raise the limit with seedLimits: \{ maxCount: 1000000000 \} in the pgtwin config/,
      },
    );
  });

  test('takes a configured maxCount', async () => {
    await expectSeedError(
      '{"public.projects": [{ "$count": 6, "client_id": 1 }]}',
      {
        path: '$["public.projects"][0].$count',
        line: 1,
        column: 24,
        message: /"\$count": 6 is more than the 5 rows one entry may build/,
      },
      { maxCount: 5 },
    );
  });

  test(`refuses more than maxRows rows in all (default ${DEFAULT_SEED_MAX_ROWS}), at the entry that goes past it`, async () => {
    const entry = `{ "$count": ${DEFAULT_SEED_MAX_COUNT}, "client_id": 1 }`;
    const entries = DEFAULT_SEED_MAX_ROWS / DEFAULT_SEED_MAX_COUNT + 1;
    await expectSeedError(`{"public.projects": [\n${Array(entries).fill(entry).join(',\n')}\n]}`, {
      path: `$["public.projects"][${entries - 1}].$count`,
      line: entries + 1,
      column: 3,
      message:
        /With this entry the seed files build more than the 1,000,000 rows one load may insert\. Seed fewer rows, or raise the limit with seedLimits: \{ maxRows: \.\.\. \}/,
    });
    const two = '{"public.clients": [{ "name": "a", "slug": "a" }, { "name": "b", "slug": "b" }]}';
    await expectSeedError(
      two,
      {
        path: '$["public.clients"][1]',
        ...at(two, '{ "name": "b"'),
        message: /more than the 1 rows one load/,
      },
      { maxRows: 1 },
    );
  });
});

describe('keys JavaScript treats specially', () => {
  test('refuses "__proto__" as a row key rather than making it the row prototype', async () => {
    await expectSeedError(
      '{\n  "public.clients": [\n    { "name": "Acme", "slug": "acme", "__proto__": { "notes": "x" } }\n  ]\n}\n',
      {
        path: '$["public.clients"][0].__proto__',
        line: 3,
        column: 39,
        message:
          /"__proto__" cannot be a key in a seed file: JavaScript treats it specially on objects, so the row would not be what the file says\. Rename the key/,
      },
    );
  });

  test('refuses an escaped "__proto__", and "constructor" and "prototype" anywhere, also inside json values', async () => {
    await expectSeedError('{"public.clients": [{ "name": "Acme", "slug": "acme", "__pr\\u006fto__": {} }]}', {
      path: '$["public.clients"][0].__proto__',
      line: 1,
      column: 55,
      message: /"__proto__" cannot be a key/,
    });
    await expectSeedError('{"public.projects": [{ "settings": { "a": [{ "constructor": 1 }] } }]}', {
      path: '$["public.projects"][0].settings.a[0].constructor',
      line: 1,
      column: 46,
      message: /"constructor" cannot be a key/,
    });
    await expectSeedError('{"prototype": []}', {
      path: '$.prototype',
      line: 1,
      column: 2,
      message: /"prototype" cannot be a key/,
    });
  });

  test('does not pollute Object.prototype', () => {
    expect(({} as Record<string, unknown>).notes).toBeUndefined();
  });
});

describe('JSON objects and arrays given to columns that do not hold JSON', () => {
  const acme = '"public.clients": [{ "$key": "acme", "name": "Acme", "slug": "acme" }]';

  test('refuses an object for a text column', async () => {
    await expectSeedError(`{"public.clients": [{ "name": { "first": "Acme" }, "slug": "acme" }]}`, {
      path: '$["public.clients"][0].name',
      line: 1,
      column: 23,
      message:
        /public\.clients\.name is text; got an object\. Only json\/jsonb columns store objects and arrays as JSON \(and array columns take arrays\): give a text value \(a string, number or boolean\), or make the column jsonb/,
    });
  });

  test('refuses an array for a numeric column, and for a row of a $count', async () => {
    const text = `{${acme},\n"public.projects": [{ "$count": 2, "client_id": { "$ref": "public.clients.acme" }, "budget": [1] }]}`;
    await expectSeedError(text, {
      path: '$["public.projects"][0].budget',
      ...at(text, '"budget"'),
      message: /public\.projects\.budget is numeric\(24,10\); got an array\./,
    });
  });

  test('refuses an object inside the array of an array column', async () => {
    const text = `{${acme},\n"public.projects": [{ "slug": "demo", "name": "Demo", "client_id": { "$ref": "public.clients.acme" }, "tags": ["a", { "b": 1 }] }]}`;
    await expectSeedError(text, {
      path: '$["public.projects"][0].tags',
      ...at(text, '"tags"'),
      message:
        /public\.projects\.tags is text\[\]; got an object at \[1\] of the array\. .*give an array of text values/,
    });
  });

  test('refuses an object for a composite column, saying to write its row literal', async () => {
    const text =
      `{${acme},\n"public.projects": [{ "$key": "demo", "slug": "demo", "name": "Demo", "client_id": { "$ref": "public.clients.acme" } }],\n` +
      `"public.llm_usage": [{ "project_id": { "$ref": "public.projects.demo" }, "provider": "openai", "model": "m", "cost": 1, "used_at": "2024-01-05T00:00:00Z", "tokens": { "prompt": 1, "completion": 2 } }]}`;
    await expectSeedError(text, {
      path: '$["public.llm_usage"][0].tokens',
      ...at(text, '"tokens"'),
      message:
        /public\.llm_usage\.tokens is public\.token_counts; got an object\. .*give the composite value as a string in PostgreSQL's row syntax, e\.g\. "\(1,2\)"/,
    });
  });

  test('refuses an object in a "where" lookup for a text column', async () => {
    await expectSeedError(
      `{"project_alpha.content_entries": [{ "project_id": 1,\n "object_model_id": { "$ref": "public.object_models", "where": { "name": ["Article"] } } }]}`,
      {
        path: '$["project_alpha.content_entries"][0].object_model_id.where.name',
        line: 2,
        column: 66,
        message: /public\.object_models\.name is text; got an array/,
      },
    );
  });

  test('still takes objects and arrays for jsonb, arrays for array columns and strings for composites', async () => {
    const file = 'fitting.json';
    await writeFile(
      path.join(directory, file),
      JSON.stringify({
        'public.clients': [{ $key: 'fit', name: 'Fit', slug: 'fit' }],
        'public.projects': [
          {
            $key: 'fit',
            slug: 'fit',
            name: 'Fit',
            client_id: { $ref: 'public.clients.fit' },
            settings: { a: [1, { b: null }] },
            tags: ['x', 'y'],
          },
        ],
        'public.llm_usage': [
          {
            project_id: { $ref: 'public.projects.fit' },
            provider: 'openai',
            model: 'm',
            cost: 1,
            used_at: '2024-01-05T00:00:00Z',
            tokens: '(1,2)',
          },
        ],
      }),
    );
    const { client: own } = await databases.fresh();
    await expect(loadSeedData(own, file, { rootDir: directory })).resolves.toMatchObject({ rows: 3 });
    expect(
      (await own.query(`SELECT p.settings, p.tags, u.tokens FROM public.projects p, public.llm_usage u`))
        .rows,
    ).toEqual([{ settings: { a: [1, { b: null }] }, tags: ['x', 'y'], tokens: '(1,2)' }]);
  });
});

describe('pgtwin doctor', () => {
  test.each([
    [
      'nesting 5,000 levels deep',
      `{"public.projects": [{ "settings": ${'['.repeat(5000)}${']'.repeat(5000)} }]}`,
      /^tests\/data\/seed_data\.json:1:\d+ \$\["public\.projects"\]\[0\]\.settings(\[0\])+: Objects and arrays nest more than 100 levels/,
    ],
    [
      '"$count": 1000000000',
      '{"public.projects": [{ "$count": 1000000000, "client_id": 1 }]}',
      /^tests\/data\/seed_data\.json:1:24 \$\["public\.projects"\]\[0\]\.\$count: "\$count": 1000000000 is more than the 100,000 rows/,
    ],
    [
      'a "__proto__" row key',
      '{"public.clients": [{ "name": "a", "slug": "a", "__proto__": {} }]}',
      /^tests\/data\/seed_data\.json:1:49 \$\["public\.clients"\]\[0\]\.__proto__: "__proto__" cannot be a key/,
    ],
    [
      'an object for a text column',
      '{"public.clients": [{ "name": { "a": 1 }, "slug": "a" }]}',
      /^tests\/data\/seed_data\.json:1:23 \$\["public\.clients"\]\[0\]\.name: public\.clients\.name is text; got an object/,
    ],
  ])('fails the seeds check on %s with the SeedError message, not a crash', async (_name, text, message) => {
    const cwd = emptyDir();
    await mkdir(path.join(cwd, 'tests/data'), { recursive: true });
    await writeFile(path.join(cwd, 'tests/data/seed_data.json'), text);
    const env = cliEnv({
      DB_NAME: production,
      TEST_DB_NAME: `${production}_never`,
      TEST_DB_USER: `${production}_never`,
    });
    const result = await runCli(['doctor', '--json'], { env, cwd });
    expect(result.code, result.stderr).toBe(1);
    const { checks } = result.json<{ checks: { name: string; status: string; message: string }[] }>();
    expect(checks.find((check) => check.name === 'seeds')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(message) as unknown,
    });
  });
});
