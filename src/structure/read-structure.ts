import type pg from 'pg';
import { serverVersion } from '../connection/server-version.js';
import { UnsupportedObjectError } from '../errors.js';
import { extensionMemberSql as member, findUnsupportedObjects } from './find-unsupported-objects.js';
import { orderObjects } from './order-objects.js';
import { inCatalogSnapshot, type Queryable } from './queryable.js';
import { DEFAULT_SCHEMA_SELECTION, resolveSchemas, type SchemaSelection } from './schema-selection.js';
import {
  objectKey,
  SNAPSHOT_FORMAT,
  type ObjectKind,
  type StructureObject,
  type StructureSnapshot,
} from './structure-snapshot.js';
import { queryTableCatalog, type CatalogColumn, type CatalogTable } from './table-catalog.js';

/**
 * Reads the structure of the selected schemas into a {@link StructureSnapshot}: the one model behind
 * clone, compare and fingerprint. Reads in one read-only repeatable-read transaction with one catalog
 * query per object kind, whatever the number of schemas and tables.
 *
 * Throws {@link UnsupportedObjectError} listing every object it could not recreate (event triggers,
 * foreign tables, rules, ...) rather than returning a partial structure.
 *
 * @example
 * ```ts
 * const snapshot = await readStructure(production, { schemas: ['public', 'project_*'] });
 * snapshot.objects.find((o) => o.key === 'table public.projects')?.definition; // 'CREATE TABLE public.projects (...'
 * ```
 */
export function readStructure(
  queryable: Queryable,
  selection: SchemaSelection = DEFAULT_SCHEMA_SELECTION,
  options: {
    /** Runs first in the reading's transaction, to read something else in the same snapshot. */
    inSnapshot?: (client: pg.ClientBase) => Promise<void>;
  } = {},
): Promise<StructureSnapshot> {
  return inCatalogSnapshot(queryable, async (client) => {
    await options.inSnapshot?.(client);
    const schemas = await resolveSchemas(client, selection);
    const unsupported = await findUnsupportedObjects(client, schemas);
    if (unsupported.length > 0) throw new UnsupportedObjectError(unsupported);

    const reserved = await client.query<{ word: string }>(
      "SELECT word FROM pg_catalog.pg_get_keywords() WHERE catcode <> 'U'",
    );
    const version = await serverVersion(client);
    const tables = await queryTableCatalog(client, schemas);
    const model = new ModelBuilder(new Set(reserved.rows.map((row) => row.word)));
    const read = { client, schemas, model };

    await readSchemas(read);
    await readExtensions(read);
    await readTypes(read);
    await readFunctions(read);
    const identities = await readSequences(read);
    await readRelations(read, tables, identities);
    await readConstraints(read);
    await readIndexes(read);
    await readTriggers(read);
    await readPolicies(read);
    await readDependencies(read);

    return {
      format: SNAPSHOT_FORMAT,
      serverVersion: version,
      schemas,
      objects: model.ordered(),
      tables,
    };
  });
}

interface Read {
  client: pg.ClientBase;
  schemas: string[];
  model: ModelBuilder;
}

/** `catalog:oid`, how pg_depend rows name objects. */
type CatalogId = `${string}:${string}`;

interface AddOptions {
  /** Catalog ids of this object and of sub-objects it includes (columns defaults, row type, backing index). */
  ids?: (CatalogId | false)[];
  /** Keys this object needs besides those pg_depend records (its table, a parent index). */
  after?: (string | null)[];
  /** Catalog ids this object needs, resolved once every object is known (a parent index). */
  afterIds?: CatalogId[];
  /** Comment on the object: the `COMMENT ON` target (`TABLE public.projects`) and text. */
  comment?: { target: string; text: string | null };
}

/** Collects objects, the catalog ids that map to them, and dependencies, then orders them. */
class ModelBuilder {
  private readonly objects: StructureObject[] = [];
  private readonly owners = new Map<string, string>();
  private readonly dependsOn = new Map<string, Set<string>>();
  private readonly pendingIds: { key: string; id: CatalogId }[] = [];

  constructor(private readonly reserved: Set<string>) {}

  /** An identifier quoted exactly when PostgreSQL's `quote_ident` would quote it. */
  ident = (name: string): string =>
    /^[a-z_][a-z0-9_$]*$/.test(name) && !this.reserved.has(name) ? name : `"${name.replaceAll('"', '""')}"`;

  qualified = (schema: string, name: string): string => `${this.ident(schema)}.${this.ident(name)}`;

  add(kind: ObjectKind, schema: string, name: string, definition: string, options: AddOptions = {}): string {
    const key = objectKey(kind, schema, name);
    this.objects.push({ kind, schema, name, key, definition });
    for (const id of options.ids ?? []) if (id) this.owners.set(id, key);
    for (const after of options.after ?? []) if (after !== null) this.depend(key, after);
    for (const id of options.afterIds ?? []) this.pendingIds.push({ key, id });
    if (options.comment?.text != null) {
      const text = `COMMENT ON ${options.comment.target} IS ${literal(options.comment.text)};`;
      this.depend(this.add('comment', schema, key, text), key);
    }
    return key;
  }

  /** Records that the object owning catalog id `from` needs the one owning `to` (from pg_depend). */
  dependById(from: CatalogId, to: CatalogId): void {
    const fromKey = this.owners.get(from);
    const toKey = this.owners.get(to);
    if (fromKey !== undefined && toKey !== undefined) this.depend(fromKey, toKey);
  }

  ordered(): StructureObject[] {
    for (const { key, id } of this.pendingIds) {
      const owner = this.owners.get(id);
      if (owner !== undefined) this.depend(key, owner);
    }
    for (const object of this.objects) {
      if (object.kind !== 'schema')
        this.depend(object.key, objectKey('schema', object.schema, object.schema));
    }
    return orderObjects(this.objects, this.dependsOn);
  }

  private depend(key: string, on: string): void {
    if (key === on) return;
    let set = this.dependsOn.get(key);
    if (set === undefined) this.dependsOn.set(key, (set = new Set()));
    set.add(on);
  }
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

async function query<R extends pg.QueryResultRow>(read: Read, sql: string): Promise<R[]> {
  return (await read.client.query<R>(sql, [read.schemas])).rows;
}

async function readSchemas(read: Read): Promise<void> {
  const rows = await query<{ oid: string; name: string; comment: string | null }>(
    read,
    `SELECT n.oid::text, n.nspname AS name, pg_catalog.obj_description(n.oid, 'pg_namespace') AS comment
     FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY($1::text[])`,
  );
  const { model } = read;
  for (const row of rows) {
    model.add('schema', row.name, row.name, `CREATE SCHEMA IF NOT EXISTS ${model.ident(row.name)};`, {
      ids: [`pg_namespace:${row.oid}`],
      comment: { target: `SCHEMA ${model.ident(row.name)}`, text: row.comment },
    });
  }
}

async function readExtensions(read: Read): Promise<void> {
  const rows = await query<{ oid: string; name: string; schema: string; comment: string | null }>(
    read,
    `SELECT x.oid::text, x.extname AS name, n.nspname AS schema,
       pg_catalog.obj_description(x.oid, 'pg_extension') AS comment
     FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace
     WHERE n.nspname = ANY($1::text[])`,
  );
  const { model } = read;
  for (const row of rows) {
    const name = model.ident(row.name);
    model.add(
      'extension',
      row.schema,
      row.name,
      `CREATE EXTENSION IF NOT EXISTS ${name} WITH SCHEMA ${model.ident(row.schema)};`,
      {
        ids: [`pg_extension:${row.oid}`],
        comment: { target: `EXTENSION ${name}`, text: row.comment },
      },
    );
  }
}

async function readTypes(read: Read): Promise<void> {
  const rows = await query<{
    oid: string;
    array_oid: string;
    relid: string;
    multirange_oid: string | null;
    schema: string;
    name: string;
    typtype: string;
    labels: string | null;
    base_type: string;
    not_null: boolean;
    default: string | null;
    collation: string | null;
    domain_constraints: { oid: string; def: string }[] | null;
    attributes: string | null;
    range_options: string | null;
    comment: string | null;
  }>(
    read,
    `SELECT t.oid::text, t.typarray::text AS array_oid, t.typrelid::text AS relid,
       r.rngmultitypid::text AS multirange_oid, n.nspname AS schema, t.typname AS name, t.typtype,
       (SELECT string_agg(pg_catalog.quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
        FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) AS labels,
       pg_catalog.format_type(t.typbasetype, t.typtypmod) AS base_type, t.typnotnull AS not_null,
       t.typdefault AS default,
       CASE WHEN t.typtype = 'd' AND t.typcollation <> bt.typcollation THEN t.typcollation::pg_catalog.regcollation::text END
         AS collation,
       (SELECT json_agg(json_build_object('oid', k.oid::text, 'def',
           'CONSTRAINT ' || pg_catalog.quote_ident(k.conname) || ' ' || pg_catalog.pg_get_constraintdef(k.oid))
           ORDER BY k.conname)
        FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid) AS domain_constraints,
       (SELECT string_agg(pg_catalog.quote_ident(a.attname) || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attcollation <> at.typcollation THEN ' COLLATE ' || a.attcollation::pg_catalog.regcollation::text ELSE '' END,
           ', ' ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
        WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attributes,
       CASE WHEN t.typtype = 'r' THEN
         'subtype = ' || pg_catalog.format_type(r.rngsubtype, NULL)
         || ', subtype_opclass = ' || pg_catalog.quote_ident(ocn.nspname) || '.' || pg_catalog.quote_ident(oc.opcname)
         || CASE WHEN r.rngcollation <> 0 THEN ', collation = ' || r.rngcollation::pg_catalog.regcollation::text ELSE '' END
         || CASE WHEN r.rngsubdiff <> 0 THEN ', subtype_diff = ' || r.rngsubdiff::pg_catalog.regproc::text ELSE '' END
         || ', multirange_type_name = ' || pg_catalog.format_type(r.rngmultitypid, NULL)
       END AS range_options,
       pg_catalog.obj_description(t.oid, 'pg_type') AS comment
     FROM pg_catalog.pg_type t
     JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
     LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
     LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
     LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
     LEFT JOIN pg_catalog.pg_opclass oc ON oc.oid = r.rngsubopc
     LEFT JOIN pg_catalog.pg_namespace ocn ON ocn.oid = oc.opcnamespace
     WHERE n.nspname = ANY($1::text[]) AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
       AND NOT ${member('pg_type', 't.oid')}`,
  );
  const { model } = read;
  for (const row of rows) {
    const name = model.qualified(row.schema, row.name);
    let definition: string;
    if (row.typtype === 'e') definition = `CREATE TYPE ${name} AS ENUM (${row.labels ?? ''});`;
    else if (row.typtype === 'c') definition = `CREATE TYPE ${name} AS (${row.attributes ?? ''});`;
    else if (row.typtype === 'r') definition = `CREATE TYPE ${name} AS RANGE (${row.range_options});`;
    else {
      definition = [
        `CREATE DOMAIN ${name} AS ${row.base_type}`,
        row.collation && `COLLATE ${row.collation}`,
        row.default !== null && `DEFAULT ${row.default}`,
        row.not_null && 'NOT NULL',
        ...(row.domain_constraints ?? []).map((k) => k.def),
      ]
        .filter(Boolean)
        .join(' ')
        .concat(';');
    }
    model.add('type', row.schema, row.name, definition, {
      ids: [
        `pg_type:${row.oid}`,
        `pg_type:${row.array_oid}`,
        row.relid !== '0' && `pg_class:${row.relid}`,
        row.multirange_oid !== null && `pg_type:${row.multirange_oid}`,
        ...(row.domain_constraints ?? []).map((k): CatalogId => `pg_constraint:${k.oid}`),
      ],
      comment: { target: `${row.typtype === 'd' ? 'DOMAIN' : 'TYPE'} ${name}`, text: row.comment },
    });
  }
}

async function readFunctions(read: Read): Promise<void> {
  const rows = await query<{
    oid: string;
    schema: string;
    name: string;
    signature: string;
    procedure: boolean;
    definition: string;
    comment: string | null;
  }>(
    read,
    `SELECT p.oid::text, n.nspname AS schema, p.proname AS name,
       pg_catalog.pg_get_function_identity_arguments(p.oid) AS signature, p.prokind = 'p' AS procedure,
       pg_catalog.pg_get_functiondef(p.oid) AS definition, pg_catalog.obj_description(p.oid, 'pg_proc') AS comment
     FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = ANY($1::text[]) AND p.prokind IN ('f', 'p') AND NOT ${member('pg_proc', 'p.oid')}
       -- Constructors CREATE TYPE ... AS RANGE makes itself.
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                       AND d.objid = p.oid AND d.deptype = 'i')`,
  );
  const { model } = read;
  for (const row of rows) {
    const target = `${row.procedure ? 'PROCEDURE' : 'FUNCTION'} ${model.qualified(row.schema, row.name)}(${row.signature})`;
    model.add('function', row.schema, `${row.name}(${row.signature})`, `${row.definition.trim()};`, {
      ids: [`pg_proc:${row.oid}`],
      comment: { target, text: row.comment },
    });
  }
}

interface SequenceRow {
  oid: string;
  schema: string;
  name: string;
  type: string;
  start: string;
  increment: string;
  min: string;
  max: string;
  cache: string;
  cycle: boolean;
  owner_type: 'a' | 'i' | null;
  owner_schema: string | null;
  owner_table: string | null;
  owner_column: string | null;
  comment: string | null;
}

/** Reads sequences; returns identity sequences by `schema.table.column` for the table definitions. */
async function readSequences(read: Read): Promise<Map<string, SequenceRow>> {
  const rows = await query<SequenceRow>(
    read,
    `SELECT c.oid::text, n.nspname AS schema, c.relname AS name, pg_catalog.format_type(s.seqtypid, NULL) AS type,
       s.seqstart AS start, s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max, s.seqcache AS cache,
       s.seqcycle AS cycle, d.deptype AS owner_type, tn.nspname AS owner_schema, tc.relname AS owner_table,
       a.attname AS owner_column, pg_catalog.obj_description(c.oid, 'pg_class') AS comment
     FROM pg_catalog.pg_sequence s
     JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
       AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')
     LEFT JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid
     LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
     LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
     WHERE n.nspname = ANY($1::text[]) AND NOT ${member('pg_class', 'c.oid')}`,
  );
  const { model } = read;
  const identities = new Map<string, SequenceRow>();
  for (const row of rows) {
    if (row.owner_type === 'i') {
      identities.set(`${row.owner_schema}.${row.owner_table}.${row.owner_column}`, row);
      continue;
    }
    const name = model.qualified(row.schema, row.name);
    const key = model.add(
      'sequence',
      row.schema,
      row.name,
      `CREATE SEQUENCE ${name} AS ${row.type} ${sequenceOptions(row)};`,
      {
        ids: [`pg_class:${row.oid}`],
        comment: { target: `SEQUENCE ${name}`, text: row.comment },
      },
    );
    if (row.owner_type === 'a' && read.schemas.includes(row.owner_schema!)) {
      const owner = `${model.qualified(row.owner_schema!, row.owner_table!)}.${model.ident(row.owner_column!)}`;
      model.add('sequence ownership', row.schema, row.name, `ALTER SEQUENCE ${name} OWNED BY ${owner};`, {
        after: [key, objectKey('table', row.owner_schema!, row.owner_table!)],
      });
    }
  }
  return identities;
}

function sequenceOptions(row: SequenceRow): string {
  return (
    `START WITH ${row.start} INCREMENT BY ${row.increment} MINVALUE ${row.min} MAXVALUE ${row.max} ` +
    `CACHE ${row.cache}${row.cycle ? ' CYCLE' : ''}`
  );
}

async function readRelations(
  read: Read,
  tables: CatalogTable[],
  identities: Map<string, SequenceRow>,
): Promise<void> {
  const rows = await query<{
    oid: string;
    reltype: string;
    rule: string | null;
    schema: string;
    name: string;
    relkind: 'r' | 'p' | 'v' | 'm';
    unlogged: boolean;
    options: string | null;
    row_security: boolean;
    force_row_security: boolean;
    view_definition: string | null;
    attrdefs: string[] | null;
    comment: string | null;
    column_comments: { column: string; comment: string }[] | null;
  }>(
    read,
    `SELECT c.oid::text, c.reltype::text,
       (SELECT r.oid::text FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename = '_RETURN') AS rule,
       n.nspname AS schema, c.relname AS name, c.relkind, c.relpersistence = 'u' AS unlogged,
       pg_catalog.array_to_string(c.reloptions, ', ') AS options,
       c.relrowsecurity AS row_security, c.relforcerowsecurity AS force_row_security,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END AS view_definition,
       (SELECT array_agg(ad.oid::text) FROM pg_catalog.pg_attrdef ad WHERE ad.adrelid = c.oid) AS attrdefs,
       pg_catalog.obj_description(c.oid, 'pg_class') AS comment,
       (SELECT json_agg(json_build_object('column', a.attname, 'comment', d.description) ORDER BY a.attnum)
        FROM pg_catalog.pg_description d
        JOIN pg_catalog.pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
        WHERE d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objoid = c.oid AND d.objsubid > 0)
         AS column_comments
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT ${member('pg_class', 'c.oid')}`,
  );
  const { model } = read;
  const catalog = new Map(tables.map((table) => [table.key, table]));
  for (const row of rows) {
    const name = model.qualified(row.schema, row.name);
    const table = catalog.get(`${row.schema}.${row.name}`);
    const ids: CatalogId[] = [`pg_class:${row.oid}`, `pg_type:${row.reltype}`];
    if (row.rule !== null) ids.push(`pg_rewrite:${row.rule}`);
    for (const attrdef of row.attrdefs ?? []) ids.push(`pg_attrdef:${attrdef}`);
    const withOptions = row.options ? ` WITH (${row.options})` : '';
    const word = { r: 'TABLE', p: 'TABLE', v: 'VIEW', m: 'MATERIALIZED VIEW' }[row.relkind];

    let kind: ObjectKind;
    let definition: string;
    if (row.relkind === 'v') {
      kind = 'view';
      definition = `CREATE VIEW ${name}${withOptions} AS\n${row.view_definition!.trimEnd()}`;
    } else if (row.relkind === 'm') {
      kind = 'materialized view';
      definition = `CREATE MATERIALIZED VIEW ${name}${withOptions} AS\n${row.view_definition!.trimEnd().replace(/;$/, '')}\n  WITH NO DATA;`;
    } else {
      kind = 'table';
      definition = tableDefinition(model, table!, catalog, identities, row.unlogged, withOptions);
    }
    const parent = table?.partitionOf
      ? objectKey('table', table.partitionOf.schema, table.partitionOf.table)
      : null;
    const key = model.add(kind, row.schema, row.name, definition, {
      ids,
      after: [parent],
      comment: { target: `${word} ${name}`, text: row.comment },
    });
    for (const { column, comment } of row.column_comments ?? []) {
      model.add(
        'comment',
        row.schema,
        `column ${row.schema}.${row.name}.${column}`,
        `COMMENT ON COLUMN ${name}.${model.ident(column)} IS ${literal(comment)};`,
        {
          after: [key],
        },
      );
    }
    if (row.row_security || row.force_row_security) {
      const statements = [
        row.row_security && `ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY;`,
        row.force_row_security && `ALTER TABLE ${name} FORCE ROW LEVEL SECURITY;`,
      ];
      model.add('row security', row.schema, row.name, statements.filter(Boolean).join('\n'), {
        after: [key],
      });
    }
  }
}

function tableDefinition(
  model: ModelBuilder,
  table: CatalogTable,
  catalog: Map<string, CatalogTable>,
  identities: Map<string, SequenceRow>,
  unlogged: boolean,
  withOptions: string,
): string {
  const name = model.qualified(table.schema, table.name);
  const partitionBy = table.partitionKey ? ` PARTITION BY ${table.partitionKey}` : '';
  const create = `CREATE ${unlogged ? 'UNLOGGED ' : ''}TABLE ${name}`;
  if (table.partitionOf) {
    // Columns, NOT NULLs and defaults come from the parent; only the partition's own differences follow.
    const parent = catalog.get(`${table.partitionOf.schema}.${table.partitionOf.table}`);
    const inherited = new Map(parent?.columns.map((column) => [column.name, column]));
    const differences = table.columns.flatMap((column) => {
      const from = inherited.get(column.name);
      const alter = `ALTER TABLE ONLY ${name} ALTER COLUMN ${model.ident(column.name)}`;
      return [
        from &&
          from.default !== column.default &&
          (column.default === null ? `${alter} DROP DEFAULT;` : `${alter} SET DEFAULT ${column.default};`),
        from && from.nullable && !column.nullable && `${alter} SET NOT NULL;`,
      ].filter((statement): statement is string => typeof statement === 'string');
    });
    const parentName = model.qualified(table.partitionOf.schema, table.partitionOf.table);
    return [
      `${create} PARTITION OF ${parentName} ${table.partitionBound}${partitionBy}${withOptions};`,
      ...differences,
    ].join('\n');
  }
  const columns = table.columns.map((column) => `    ${columnDefinition(model, table, column, identities)}`);
  return `${create} (\n${columns.join(',\n')}\n)${partitionBy}${withOptions};`;
}

function columnDefinition(
  model: ModelBuilder,
  table: CatalogTable,
  column: CatalogColumn,
  identities: Map<string, SequenceRow>,
): string {
  const parts = [model.ident(column.name), column.type];
  if (column.collation !== null) parts.push(`COLLATE ${column.collation}`);
  if (column.generated !== null) parts.push(`GENERATED ALWAYS AS (${column.generated}) STORED`);
  if (column.identity !== null) {
    const sequence = identities.get(`${table.schema}.${table.name}.${column.name}`);
    const options = sequence
      ? ` (SEQUENCE NAME ${model.qualified(sequence.schema, sequence.name)} ${sequenceOptions(sequence)})`
      : '';
    parts.push(`GENERATED ${column.identity === 'always' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY${options}`);
  }
  if (column.default !== null) parts.push(`DEFAULT ${column.default}`);
  if (!column.nullable) parts.push('NOT NULL');
  return parts.join(' ');
}

async function readConstraints(read: Read): Promise<void> {
  const rows = await query<{
    oid: string;
    index_oid: string;
    parent_index_oid: string | null;
    parent_index: string | null;
    schema: string;
    table: string;
    name: string;
    type: string;
    partitioned: boolean;
    definition: string;
    clustered: boolean;
    comment: string | null;
  }>(
    read,
    `SELECT k.oid::text, k.conindid::text AS index_oid, pi.oid::text AS parent_index_oid,
       pg_catalog.quote_ident(pin.nspname) || '.' || pg_catalog.quote_ident(pi.relname) AS parent_index,
       n.nspname AS schema, c.relname AS table, k.conname AS name, k.contype AS type,
       c.relkind = 'p' AS partitioned, pg_catalog.pg_get_constraintdef(k.oid) AS definition,
       coalesce(ix.indisclustered, false) AS clustered, pg_catalog.obj_description(k.oid, 'pg_constraint') AS comment
     FROM pg_catalog.pg_constraint k
     JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_index ix ON ix.indexrelid = k.conindid AND k.contype IN ('p', 'u', 'x')
     LEFT JOIN pg_catalog.pg_inherits ih ON ih.inhrelid = ix.indexrelid
     LEFT JOIN pg_catalog.pg_class pi ON pi.oid = ih.inhparent
     LEFT JOIN pg_catalog.pg_namespace pin ON pin.oid = pi.relnamespace
     WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p')
       AND (k.contype IN ('p', 'u', 'x') OR (k.contype = 'c' AND k.conislocal) OR (k.contype = 'f' AND k.conparentid = 0))`,
  );
  const { model } = read;
  for (const row of rows) {
    const table = model.qualified(row.schema, row.table);
    // Partitioned tables pass CHECK and FOREIGN KEY constraints down to their partitions; other
    // constraints are added to each table alone and their indexes attached, as pg_dump does.
    const only = row.partitioned && (row.type === 'c' || row.type === 'f') ? '' : 'ONLY ';
    const statements = [
      `ALTER TABLE ${only}${table} ADD CONSTRAINT ${model.ident(row.name)} ${row.definition};`,
    ];
    if (row.parent_index !== null) {
      statements.push(
        `ALTER INDEX ${row.parent_index} ATTACH PARTITION ${model.qualified(row.schema, row.name)};`,
      );
    }
    if (row.clustered) statements.push(`ALTER TABLE ${table} CLUSTER ON ${model.ident(row.name)};`);
    model.add(
      row.type === 'f' ? 'foreign key' : 'constraint',
      row.schema,
      `${row.table}.${row.name}`,
      statements.join('\n'),
      {
        ids: [`pg_constraint:${row.oid}`, row.index_oid !== '0' && `pg_class:${row.index_oid}`],
        after: [objectKey('table', row.schema, row.table)],
        afterIds: row.parent_index_oid === null ? [] : [`pg_class:${row.parent_index_oid}`],
        comment: { target: `CONSTRAINT ${model.ident(row.name)} ON ${table}`, text: row.comment },
      },
    );
  }
}

async function readIndexes(read: Read): Promise<void> {
  const rows = await query<{
    oid: string;
    parent_index_oid: string | null;
    parent_index: string | null;
    schema: string;
    table: string;
    relkind: string;
    name: string;
    definition: string;
    clustered: boolean;
    comment: string | null;
  }>(
    read,
    `SELECT ic.oid::text, pi.oid::text AS parent_index_oid,
       pg_catalog.quote_ident(pin.nspname) || '.' || pg_catalog.quote_ident(pi.relname) AS parent_index,
       n.nspname AS schema, c.relname AS table, c.relkind, ic.relname AS name,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition, i.indisclustered AS clustered,
       pg_catalog.obj_description(ic.oid, 'pg_class') AS comment
     FROM pg_catalog.pg_index i
     JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
     JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_inherits ih ON ih.inhrelid = i.indexrelid
     LEFT JOIN pg_catalog.pg_class pi ON pi.oid = ih.inhparent
     LEFT JOIN pg_catalog.pg_namespace pin ON pin.oid = pi.relnamespace
     WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'm')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                       WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
       AND NOT ${member('pg_class', 'ic.oid')}`,
  );
  const { model } = read;
  for (const row of rows) {
    const name = model.qualified(row.schema, row.name);
    const statements = [`${row.definition};`];
    if (row.parent_index !== null)
      statements.push(`ALTER INDEX ${row.parent_index} ATTACH PARTITION ${name};`);
    if (row.clustered)
      statements.push(
        `ALTER TABLE ${model.qualified(row.schema, row.table)} CLUSTER ON ${model.ident(row.name)};`,
      );
    const relationKind = row.relkind === 'm' ? 'materialized view' : 'table';
    model.add('index', row.schema, `${row.table}.${row.name}`, statements.join('\n'), {
      ids: [`pg_class:${row.oid}`],
      after: [objectKey(relationKind, row.schema, row.table)],
      afterIds: row.parent_index_oid === null ? [] : [`pg_class:${row.parent_index_oid}`],
      comment: { target: `INDEX ${name}`, text: row.comment },
    });
  }
}

async function readTriggers(read: Read): Promise<void> {
  const rows = await query<{
    oid: string;
    schema: string;
    table: string;
    relkind: string;
    name: string;
    definition: string;
    enabled: string;
    comment: string | null;
  }>(
    read,
    `SELECT t.oid::text, n.nspname AS schema, c.relname AS table, c.relkind, t.tgname AS name,
       pg_catalog.pg_get_triggerdef(t.oid) AS definition, t.tgenabled AS enabled,
       pg_catalog.obj_description(t.oid, 'pg_trigger') AS comment
     FROM pg_catalog.pg_trigger t
     JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY($1::text[]) AND NOT t.tgisinternal AND t.tgparentid = 0`,
  );
  const { model } = read;
  const toggles: Record<string, string> = { D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' };
  for (const row of rows) {
    const table = model.qualified(row.schema, row.table);
    const statements = [`${row.definition};`];
    const toggle = toggles[row.enabled];
    if (toggle) statements.push(`ALTER TABLE ${table} ${toggle} TRIGGER ${model.ident(row.name)};`);
    const relationKind = row.relkind === 'v' ? 'view' : 'table';
    model.add('trigger', row.schema, `${row.table}.${row.name}`, statements.join('\n'), {
      ids: [`pg_trigger:${row.oid}`],
      after: [objectKey(relationKind, row.schema, row.table)],
      comment: { target: `TRIGGER ${model.ident(row.name)} ON ${table}`, text: row.comment },
    });
  }
}

async function readPolicies(read: Read): Promise<void> {
  const rows = await query<{
    oid: string;
    schema: string;
    table: string;
    name: string;
    permissive: boolean;
    command: string;
    roles: string[];
    using: string | null;
    with_check: string | null;
    comment: string | null;
  }>(
    read,
    `SELECT p.oid::text, n.nspname AS schema, c.relname AS table, p.polname AS name, p.polpermissive AS permissive,
       p.polcmd AS command,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r)) END
             FROM unnest(p.polroles) r ORDER BY 1) AS roles,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check,
       pg_catalog.obj_description(p.oid, 'pg_policy') AS comment
     FROM pg_catalog.pg_policy p
     JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY($1::text[])`,
  );
  const { model } = read;
  const commands: Record<string, string> = { '*': 'ALL', r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE' };
  for (const row of rows) {
    const table = model.qualified(row.schema, row.table);
    const definition = [
      `CREATE POLICY ${model.ident(row.name)} ON ${table} AS ${row.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'}`,
      `FOR ${commands[row.command]} TO ${row.roles.join(', ')}`,
      row.using !== null && `USING (${row.using})`,
      row.with_check !== null && `WITH CHECK (${row.with_check})`,
    ];
    model.add('policy', row.schema, `${row.table}.${row.name}`, `${definition.filter(Boolean).join(' ')};`, {
      ids: [`pg_policy:${row.oid}`],
      after: [objectKey('table', row.schema, row.table)],
      comment: { target: `POLICY ${model.ident(row.name)} ON ${table}`, text: row.comment },
    });
  }
}

/**
 * The dependencies pg_depend records between user objects (a view on a table, a default on a function,
 * a column on a type), with references into an extension mapped to the extension itself.
 */
async function readDependencies(read: Read): Promise<void> {
  const { rows } = await read.client.query<{ id: CatalogId; ref: CatalogId }>(
    `SELECT d.classid::pg_catalog.regclass::text || ':' || d.objid AS id,
       CASE WHEN x.refobjid IS NOT NULL THEN 'pg_extension:' || x.refobjid
            ELSE d.refclassid::pg_catalog.regclass::text || ':' || d.refobjid END AS ref
     FROM pg_catalog.pg_depend d
     LEFT JOIN pg_catalog.pg_depend x ON x.classid = d.refclassid AND x.objid = d.refobjid AND x.deptype = 'e'
     WHERE d.deptype = 'n' AND d.objid >= 16384 AND d.refobjid >= 16384`,
  );
  const bare = (id: CatalogId) => id.replace(/^pg_catalog\./, '') as CatalogId;
  for (const row of rows) read.model.dependById(bare(row.id), bare(row.ref));
}
