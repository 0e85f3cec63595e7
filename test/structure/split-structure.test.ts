import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { StructureApplyError } from '../../src/errors.js';
import { ObjectCreator } from '../../src/structure/apply-structure.js';
import { applyStructure, compareSchemas, readStructure } from '../../src/structure/index.js';
import { independentIndexes, splitStructure } from '../../src/structure/split-structure.js';
import type { StructureSnapshot } from '../../src/structure/structure-snapshot.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

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

describe('ObjectCreator', () => {
  it('builds what it is handed over at most its sessions, and names the object that fails with its detail', async () => {
    const { url } = await scratch.database('creator');
    const target = await connect(url);
    await target.query(`CREATE TABLE public.docs (id int, body text, tags text[]);
      INSERT INTO public.docs SELECT g, 'doc ' || g, ARRAY['t' || (g % 7)] FROM generate_series(1, 2000) g;
      INSERT INTO public.docs VALUES (1, 'again', NULL);`);
    const sessions: pg.Client[] = [];
    const open = async () => {
      const client = await connect(url);
      sessions.push(client);
      return client;
    };
    const object = (name: string, definition: string) => ({
      kind: 'index' as const,
      schema: 'public',
      name: `docs.${name}`,
      key: `index public.docs.${name}`,
      definition,
    });
    const creator = new ObjectCreator(open, 2);
    creator.add([object('docs_body', 'CREATE INDEX docs_body ON public.docs USING btree (body)')]);
    creator.add([object('docs_tags', 'CREATE INDEX docs_tags ON public.docs USING gin (tags)')]);
    await creator.finish();
    const { rows } = await target.query(
      `SELECT indexname FROM pg_indexes WHERE tablename = 'docs' ORDER BY 1`,
    );
    expect(rows.map((row) => row.indexname)).toEqual(['docs_body', 'docs_tags']);
    expect(sessions.length).toBeLessThanOrEqual(2);

    // The duplicate id: a unique index cannot be built.
    const failing = new ObjectCreator(open, 2);
    failing.add([object('docs_pkey', 'CREATE UNIQUE INDEX docs_pkey ON public.docs USING btree (id)')]);
    const error = await failing.finish().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StructureApplyError);
    expect(error).toMatchObject({ object: 'index public.docs.docs_pkey' });
    expect((error as Error).message).toMatch(
      /Creating index public\.docs\.docs_pkey failed: could not create unique index "docs_pkey" \(Key \(id\)=\(1\) is duplicated\.\)\./,
    );
    // Its sessions are closed either way (a backend leaves pg_stat_activity a moment after its client).
    const others = async () =>
      (
        await target.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
        )
      ).rows[0]!.n;
    await expect.poll(others, { timeout: 5000 }).toBe(0);
  });
  it('builds everything with the sessions the server lets it open, when it has no slot for more', async () => {
    const { url } = await scratch.database('creator_slots');
    const role = scratch.roleName('creator_slots');
    await adminQuery(`CREATE ROLE "${role}" LOGIN CONNECTION LIMIT 1`);
    const owner = await connect(url);
    await owner.query(`CREATE TABLE public.notes (id int, body text);
      INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 5000) g;
      ALTER TABLE public.notes OWNER TO "${role}"; GRANT CREATE ON SCHEMA public TO "${role}"`);
    const limited = Object.assign(new URL(url), { username: role }).toString();
    let refused = 0;
    const creator = new ObjectCreator(
      () =>
        connect(limited).catch((error: Error & { code?: string }) => {
          if (error.code === '53300') refused++;
          throw error;
        }),
      3,
    );
    creator.add(
      ['id', 'body', 'id, body'].map((columns, i) => ({
        kind: 'index' as const,
        schema: 'public',
        name: `notes.notes_${i}`,
        key: `index public.notes.notes_${i}`,
        definition: `CREATE INDEX notes_${i} ON public.notes USING btree (${columns})`,
      })),
    );
    await creator.finish();
    expect(refused).toBe(2);
    const { rows } = await owner.query(`SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'notes'`);
    expect(rows).toEqual([{ n: 3 }]);
  });
});
