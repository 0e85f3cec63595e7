import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { applyStructure, compareSchemas, readStructure } from '../../src/structure/index.js';
import { independentIndexes, splitStructure } from '../../src/structure/split-structure.js';
import type { StructureSnapshot } from '../../src/structure/structure-snapshot.js';
import { useScratch } from '../helpers/databases.js';

const scratch = useScratch('struct_split');
const open: pg.Client[] = [];
let snapshot: StructureSnapshot;
let sourceUrl: string;

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  open.push(client);
  return client;
}

beforeAll(async () => {
  ({ url: sourceUrl } = await scratch.database('source'));
  const source = await connect(sourceUrl);
  await source.query(`
    CREATE TABLE public.teams (id int PRIMARY KEY, name text CHECK (name <> ''), size int);
    ALTER TABLE public.teams ADD CONSTRAINT size_positive CHECK (size > 0) NOT VALID;
    CREATE INDEX teams_lower_name ON public.teams (lower(name));
    CREATE TABLE public."odd ""name" (id int, team_id int REFERENCES public.teams (id), code text,
      CONSTRAINT "odd ""key" UNIQUE (team_id, code), CONSTRAINT later UNIQUE (code) DEFERRABLE INITIALLY DEFERRED);
    CREATE INDEX odd_team ON public."odd ""name" (team_id);
    -- Groups by the primary key: the view needs the key, so it is created after the data too.
    CREATE VIEW public.team_names AS SELECT t.id, t.name FROM public.teams t GROUP BY t.id;`);
  snapshot = await readStructure(source, { schemas: ['public'] });
});

afterAll(async () => {
  for (const client of open) await client.end().catch(() => undefined);
});

describe('splitStructure', () => {
  it('puts valid checks before the data, and keys, indexes, NOT VALID checks and views needing a key after', () => {
    const { beforeData, afterData } = splitStructure(snapshot);
    const keys = (part: StructureSnapshot) => part.objects.map((object) => object.key);
    expect(keys(beforeData)).toEqual(
      expect.arrayContaining(['table public.teams', 'constraint public.teams.teams_name_check']),
    );
    expect(keys(afterData)).toEqual(
      expect.arrayContaining([
        'constraint public.teams.teams_pkey',
        'constraint public.teams.size_positive',
        'index public.teams.teams_lower_name',
        'view public.team_names',
      ]),
    );
    expect(keys(beforeData).length + keys(afterData).length).toBe(snapshot.objects.length);
    expect(
      independentIndexes(afterData)
        .indexes.map(({ object }) => object.key)
        .sort(),
    ).toEqual([
      'constraint public.odd "name.odd "key',
      'constraint public.teams.teams_pkey',
      'index public.odd "name.odd_team',
      'index public.teams.teams_lower_name',
    ]);
  });

  it('builds plain keys as indexes the constraint then takes over, and gives the source structure', async () => {
    const { url } = await scratch.database('keys');
    const target = await connect(url);
    const { beforeData, afterData } = splitStructure(snapshot);
    const { indexes, rest } = independentIndexes(afterData);
    expect(indexes.map(({ table }) => table).sort()).toEqual([
      'public.odd "name',
      'public.odd "name',
      'public.teams',
      'public.teams',
    ]);
    // The deferrable key is not one: its index would have to be built deferrable.
    expect(
      rest.objects.find((object) => object.key === 'constraint public.odd "name.later')?.definition,
    ).toMatch(/UNIQUE \(code\) DEFERRABLE INITIALLY DEFERRED/);
    await applyStructure(target, beforeData, { replace: true });
    await target.query(`INSERT INTO public.teams VALUES (1, 'a', 1), (2, 'b', 2)`);
    await applyStructure(target, { ...afterData, objects: indexes.map(({ object }) => object) });
    await applyStructure(target, rest);
    const diff = await compareSchemas(await connect(sourceUrl), target, { schemas: ['public'] });
    expect(diff.equal).toBe(true);
    const { rows } = await target.query(
      `SELECT conname, contype FROM pg_constraint WHERE conrelid IN ('public.teams'::regclass, 'public."odd ""name"'::regclass) AND contype IN ('p', 'u') ORDER BY 1`,
    );
    expect(rows).toEqual([
      { conname: 'later', contype: 'u' },
      { conname: 'odd "key', contype: 'u' },
      { conname: 'teams_pkey', contype: 'p' },
    ]);
    await expect(target.query(`INSERT INTO public.teams VALUES (1, 'c', 3)`)).rejects.toThrow(/teams_pkey/);
  });

  it('applied in two parts, with rows violating a NOT VALID check in between, gives the source structure', async () => {
    const { url } = await scratch.database('target');
    const target = await connect(url);
    const { beforeData, afterData } = splitStructure(snapshot);
    await applyStructure(target, beforeData, { replace: true });
    await target.query(`INSERT INTO public.teams VALUES (1, 'a', -1)`);
    await applyStructure(target, afterData);
    const diff = await compareSchemas(await connect(sourceUrl), target, { schemas: ['public'] });
    expect(diff.equal).toBe(true);
  });
});
