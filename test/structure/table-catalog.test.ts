import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTableCatalog, sortTablesByForeignKeys, type CatalogTable } from '../../src/structure/index.js';
import { useScratch } from '../helpers/databases.js';

const scratch = useScratch('catalog');
let client: pg.Client;
let tables: CatalogTable[];

beforeAll(async () => {
  const db = await scratch.database('prod');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(
    await readFile(new URL('../../fixtures/contentgen/schema.sql', import.meta.url), 'utf8'),
  );
  tables = await readTableCatalog(client, { schemas: ['public', 'project_*'] });
});

afterAll(() => client?.end());

function table(key: string): CatalogTable {
  const found = tables.find((t) => t.key === key);
  if (!found) throw new Error(`no table ${key} in ${tables.map((t) => t.key).join(', ')}`);
  return found;
}

describe('readTableCatalog', () => {
  it('lists the tables and partitions of the selected schemas, sorted by schema and name', () => {
    expect(tables.map((t) => t.key)).toEqual([
      'project_alpha.assets',
      'project_alpha.content_entries',
      'project_alpha.content_revisions',
      'project_beta.assets',
      'project_beta.content_entries',
      'project_beta.content_revisions',
      'public.clients',
      'public.llm_usage',
      'public.llm_usage_2024_01',
      'public.llm_usage_2024_02',
      'public.llm_usage_2024_03',
      'public.llm_usage_default',
      'public.object_models',
      'public.projects',
      'public.prompts',
    ]);
  });

  it('describes column types, defaults, identity, generation, enums, domains and arrays', () => {
    const entries = table('project_alpha.content_entries');
    const column = (name: string) => entries.columns.find((c) => c.name === name)!;
    expect(column('id')).toMatchObject({
      position: 1,
      type: 'bigint',
      identity: 'always',
      hasDefault: true,
      default: null,
    });
    expect(column('slug')).toMatchObject({
      type: 'public.slug',
      typeKind: 'domain',
      category: 'string',
      nullable: false,
    });
    expect(column('status')).toMatchObject({
      type: 'public.entry_status',
      typeKind: 'enum',
      category: 'enum',
      enumLabels: ['draft', 'review', 'published', 'archived'],
      default: "'draft'::public.entry_status",
    });
    expect(column('tags')).toMatchObject({
      type: 'text[]',
      udtName: '_text',
      isArray: true,
      elementType: 'text',
      nullable: true,
    });
    expect(column('score')).toMatchObject({ type: 'numeric(30,15)', category: 'numeric' });
    expect(column('body_length')).toMatchObject({
      generated: "length(COALESCE(body, ''::text))",
      hasDefault: true,
      default: null,
    });
    expect(column('data')).toMatchObject({ type: 'jsonb', default: "'{}'::jsonb", hasDefault: true });
    expect(table('public.clients').columns.find((c) => c.name === 'email')).toMatchObject({
      type: 'public.citext',
      udtSchema: 'public',
    });
    expect(table('public.projects').columns.find((c) => c.name === 'locale')!.default).toBe(
      'public.default_locale()',
    );
  });

  it('describes keys, cross-schema and deferrable foreign keys', () => {
    const entries = table('project_beta.content_entries');
    expect(entries.primaryKey).toEqual(['id']);
    expect(entries.uniqueKeys).toEqual([
      { name: 'content_entries_project_id_slug_key', columns: ['project_id', 'slug'], kind: 'constraint' },
    ]);
    expect(entries.foreignKeys.find((fk) => fk.columns[0] === 'project_id')).toEqual({
      name: 'content_entries_project_id_fkey',
      columns: ['project_id'],
      references: { schema: 'public', table: 'projects', columns: ['id'] },
      deferrable: true,
      initiallyDeferred: true,
      onDelete: 'no action',
      onUpdate: 'no action',
    });
    expect(table('project_beta.content_revisions').primaryKey).toEqual(['entry_id', 'revision']);
    expect(table('public.prompts').uniqueKeys).toEqual([
      { name: 'prompts_model_name_key', columns: ['object_model_id', 'name'], kind: 'index' },
    ]);
  });

  it('describes partitioning', () => {
    expect(table('public.llm_usage')).toMatchObject({
      partitioned: true,
      partitionKey: 'RANGE (used_at)',
      partitionOf: null,
    });
    expect(table('public.llm_usage_2024_02')).toMatchObject({
      partitioned: false,
      partitionOf: { schema: 'public', table: 'llm_usage' },
      partitionBound: "FOR VALUES FROM ('2024-02-01 00:00:00+00') TO ('2024-03-01 00:00:00+00')",
    });
    expect(table('public.llm_usage_default').partitionBound).toBe('DEFAULT');
    // A partition carries the foreign keys it inherits, once each.
    expect(
      table('public.llm_usage_2024_01')
        .foreignKeys.map((fk) => fk.references.table)
        .sort(),
    ).toEqual(['projects', 'prompts']);
  });
});

describe('sortTablesByForeignKeys', () => {
  it('puts referenced tables first and reports self-references as cycles', () => {
    const { tables: ordered, cycles } = sortTablesByForeignKeys(tables);
    const keys = ordered.map((t) => t.key);
    expect(new Set(keys)).toEqual(new Set(tables.map((t) => t.key)));
    for (const t of ordered) {
      for (const fk of t.foreignKeys) {
        const referenced = `${fk.references.schema}.${fk.references.table}`;
        if (referenced !== t.key) expect(keys.indexOf(referenced)).toBeLessThan(keys.indexOf(t.key));
      }
    }
    expect(cycles).toEqual([
      {
        tables: ['project_alpha.content_entries'],
        foreignKeys: [
          {
            table: 'project_alpha.content_entries',
            name: 'content_entries_parent_id_fkey',
            deferrable: false,
          },
        ],
      },
      {
        tables: ['project_beta.content_entries'],
        foreignKeys: [
          {
            table: 'project_beta.content_entries',
            name: 'content_entries_parent_id_fkey',
            deferrable: false,
          },
        ],
      },
    ]);
  });

  it('keeps a loop of tables together and names the keys that close it', () => {
    const stub = (key: string, refs: string[]): CatalogTable => {
      const [schema, name] = key.split('.') as [string, string];
      return {
        schema,
        name,
        key,
        qualifiedName: `"${schema}"."${name}"`,
        columns: [],
        primaryKey: null,
        uniqueKeys: [],
        foreignKeys: refs.map((ref) => ({
          name: `${name}_${ref.split('.')[1]}_fkey`,
          columns: ['x'],
          references: { schema: ref.split('.')[0]!, table: ref.split('.')[1]!, columns: ['id'] },
          deferrable: true,
          initiallyDeferred: false,
          onDelete: 'no action',
          onUpdate: 'no action',
        })),
        partitioned: false,
        partitionKey: null,
        partitionOf: null,
        partitionBound: null,
      };
    };
    const { tables: ordered, cycles } = sortTablesByForeignKeys([
      stub('s.d', ['s.b']),
      stub('s.b', ['s.c', 's.a']),
      stub('s.c', ['s.b']),
      stub('s.a', ['elsewhere.x']),
    ]);
    expect(ordered.map((t) => t.key)).toEqual(['s.a', 's.b', 's.c', 's.d']);
    expect(cycles).toEqual([
      {
        tables: ['s.b', 's.c'],
        foreignKeys: [
          { table: 's.b', name: 'b_c_fkey', deferrable: true },
          { table: 's.c', name: 'c_b_fkey', deferrable: true },
        ],
      },
    ]);
  });
});
