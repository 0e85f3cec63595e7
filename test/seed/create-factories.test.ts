import { Factory } from 'fishery';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, FactoryError } from '../../src/errors.js';
import { createFactories, factoryNames } from '../../src/seed/index.js';
import { readTableCatalog, type CatalogTable } from '../../src/structure/index.js';
import { databaseUrl, useScratch } from '../helpers/databases.js';

const scratch = useScratch('seedfactories');
let client: pg.Client;
let catalog: CatalogTable[];

const SCHEMA = `
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE owners (id serial PRIMARY KEY, handle varchar(6) NOT NULL UNIQUE);
CREATE TABLE things (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner_id integer NOT NULL REFERENCES owners (id),
  code varchar(5) NOT NULL UNIQUE,
  label text NOT NULL,
  rank integer NOT NULL UNIQUE,
  price numeric(8, 2) NOT NULL,
  active boolean NOT NULL,
  born date NOT NULL,
  seen_at timestamptz NOT NULL,
  token uuid NOT NULL UNIQUE,
  doc json NOT NULL,
  meta jsonb NOT NULL,
  tags text[] NOT NULL,
  feeling mood NOT NULL,
  email citext NOT NULL,
  blob bytea NOT NULL,
  wait interval NOT NULL,
  note text,
  status text NOT NULL DEFAULT 'new',
  label_length integer GENERATED ALWAYS AS (length(label)) STORED
);
CREATE SCHEMA project_x;
CREATE TABLE project_x.content_entries (id serial PRIMARY KEY, title text NOT NULL);
`;

beforeAll(async () => {
  const { url } = await scratch.database();
  client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(SCHEMA);
  catalog = await readTableCatalog(client, { schemas: ['public', 'project_*'] });
});
afterAll(() => client.end());

describe('createFactories', () => {
  test('names each factory after its table and its singular, with the schema outside public', () => {
    const factories = createFactories(client, catalog);

    expect(Object.keys(factories).sort()).toEqual([
      'owner',
      'owners',
      'project_x.content_entries',
      'project_x.content_entry',
      'thing',
      'things',
    ]);
    expect(factories.thing).toBe(factories.things);
    expect(factoryNames({ schema: 'public', name: 'llm_usage' })).toEqual(['llm_usage']);
  });

  test('the automatic factory fills every NOT NULL column without a default with a value of its type', async () => {
    const factories = createFactories(client, catalog);
    const owner = await factories.owner!.create();

    const [first, second] = await factories.thing!.createList(2, { owner_id: owner.id });

    expect(first).toMatchObject({
      id: '1',
      owner_id: owner.id,
      code: 'ode-1', // varchar(5): cut from the front, keeping the distinct end
      label: 'label-1',
      rank: 1,
      price: '1.00',
      active: false,
      born: new Date('2024-01-01T00:00:00.000Z'),
      seen_at: new Date('2024-01-01T00:00:00.000Z'),
      token: '00000000-0000-4000-8000-000000000001',
      doc: {},
      meta: {},
      tags: [],
      feeling: 'happy',
      email: 'email-1',
      blob: Buffer.from('blob-1'),
      wait: { seconds: 1 },
      note: null,
      status: 'new',
      label_length: 7,
    });
    // Unique columns vary with the sequence, so a list does not collide.
    expect(second).toMatchObject({
      id: '2',
      code: 'ode-2',
      rank: 2,
      token: '00000000-0000-4000-8000-000000000002',
    });
  });

  test('build makes a row without inserting; given values win and are not generated', async () => {
    const factories = createFactories(client, catalog);
    const before = await client.query('SELECT count(*)::int AS n FROM things');

    const row = factories.thing!.build({ owner_id: 1, label: 'Given', meta: { a: [1] } });

    expect(row).toMatchObject({ owner_id: 1, label: 'Given', meta: { a: [1] }, code: 'ode-1' });
    expect((await client.query('SELECT count(*)::int AS n FROM things')).rows).toEqual(before.rows);
  });

  test('create without a required foreign key names the column and how to give it', async () => {
    const factories = createFactories(client, catalog);

    const error = await factories.thing!.create().catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(FactoryError);
    expect(error).toMatchObject({ table: 'public.things', column: 'owner_id' });
    expect((error as Error).message).toContain(
      'public.things.owner_id references public.owners and needs a value; pgtwin does not create parent rows.',
    );
    expect((error as Error).message).toContain('(await factories["owner"].create()).id');
  });

  test('create inserts through the connection the getter returns at the time, so a rolled-back test leaves nothing', async () => {
    const testClient = new pg.Client({ connectionString: databaseUrl(client.database!) });
    await testClient.connect();
    let current = client;
    const factories = createFactories(() => current, catalog);

    current = testClient;
    await testClient.query('BEGIN');
    const owner = await factories.owner!.create({ handle: 'inside' });
    const seenInside = await testClient.query(
      "SELECT count(*)::int AS n FROM owners WHERE handle = 'inside'",
    );
    await testClient.query('ROLLBACK');
    await testClient.end();

    expect(owner).toMatchObject({ handle: 'inside' });
    expect(seenInside.rows).toEqual([{ n: 1 }]);
    expect(
      (await client.query("SELECT count(*)::int AS n FROM owners WHERE handle = 'inside'")).rows,
    ).toEqual([{ n: 0 }]);
  });

  test("the user's factory overrides the automatic one, keeps its type, and is not changed", async () => {
    interface Owner {
      id?: number;
      handle: string;
    }
    const ownerFactory = Factory.define<Owner>(({ sequence }) => ({ handle: `own${sequence}` }));
    const factories = createFactories(client, catalog, { owner: ownerFactory });

    const created: Owner = await factories.owner.create();
    const fromSchemaName = factories.owners!.build();

    expect(created.handle).toMatch(/^own\d+$/);
    expect(fromSchemaName.handle).toMatch(/^own\d+$/);
    // Each factory set numbers from 1 with a sequence of its own; the user's factory keeps its own count.
    expect(ownerFactory.build().handle).toBe('own1');
  });

  test('a bare factory name covers the same-named table of every project schema', () => {
    const entry = Factory.define(() => ({ title: 'Custom' }));

    const factories = createFactories(client, catalog, { content_entry: entry });

    expect(factories['project_x.content_entry']!.build()).toEqual({ title: 'Custom' });
  });

  test('a factory named after no table is a config error with the closest table', () => {
    expect(() => createFactories(client, catalog, { thang: Factory.define(() => ({})) })).toThrow(
      ConfigError,
    );
    expect(() => createFactories(client, catalog, { thang: Factory.define(() => ({})) })).toThrow(
      'The factory "thang" matches no table (did you mean "thing"?)',
    );
  });
});
