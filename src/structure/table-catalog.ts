/**
 * The shared table catalog: what the mirror (COPY), the seed loader and the structure cloner know about
 * tables. Read it from a live database, or take `snapshot.tables` from a {@link StructureSnapshot} when
 * there is no connection (dump files carry it).
 *
 * ```ts
 * const tables = await readTableCatalog(client, { schemas: ['public', 'project_*'] });
 * const { tables: ordered, cycles } = sortTablesByForeignKeys(tables); // referenced tables first
 * for (const table of ordered) {
 *   if (table.partitioned) continue; // COPY into the leaves, or into the root with routing
 *   const columns = table.columns.filter((c) => c.generated === null).map((c) => c.name);
 * }
 * ```
 *
 * Types are `format_type` text fully qualified (`public.entry_status[]`), because the catalog is read with
 * an empty `search_path`. Column and table lists are sorted (tables by schema then name, columns by
 * position), so two reads of the same structure are deep-equal. The shape is stable: fields are only added.
 */
import { inCatalogSnapshot, type Queryable } from './queryable.js';
import { matchSchemas, resolveSchemas, type SchemaSelection } from './schema-selection.js';

/** `pg_type.typcategory` as a word. Domains take the category of their base type. */
export type TypeCategory =
  | 'array'
  | 'boolean'
  | 'composite'
  | 'datetime'
  | 'enum'
  | 'geometric'
  | 'network'
  | 'numeric'
  | 'pseudo'
  | 'range'
  | 'string'
  | 'timespan'
  | 'user'
  | 'bitstring'
  | 'unknown'
  | 'internal';

/** One column of a {@link CatalogTable}. */
export interface CatalogColumn {
  /** Column name, unquoted. */
  name: string;
  /** 1-based position among the live columns (dropped columns are not counted). */
  position: number;
  /** `format_type` text, schema-qualified for non-catalog types: `integer`, `numeric(12,4)`, `public.slug[]`. */
  type: string;
  /** `pg_type.typname` of the declared type: `int4`, `_text` for `text[]`, the domain's own name for a domain. */
  udtName: string;
  /** Schema of the declared type (`pg_catalog` for built-ins). */
  udtSchema: string;
  /** `pg_type.typtype` as a word; `domain` for a domain even over an array or enum. */
  typeKind: 'base' | 'composite' | 'domain' | 'enum' | 'pseudo' | 'range' | 'multirange';
  /** Category of the type (of the base type for a domain). */
  category: TypeCategory;
  /** Whether the type is an array (directly or through a domain). */
  isArray: boolean;
  /** `format_type` of the element for arrays, else `null`. */
  elementType: string | null;
  /** Labels, in order, when the type, its domain base or its array element is an enum; else `null`. */
  enumLabels: string[] | null;
  /** Whether the column accepts NULL (no NOT NULL). */
  nullable: boolean;
  /** Whether an INSERT without this column gets a value: a default, an identity or a generation expression. */
  hasDefault: boolean;
  /** The default expression (`pg_get_expr`), or `null`; `null` for identity and generated columns. */
  default: string | null;
  /** `'always'` / `'by-default'` for identity columns, else `null`. */
  identity: 'always' | 'by-default' | null;
  /** The expression of a `GENERATED ALWAYS AS (...) STORED` column, else `null`. Such columns cannot be written. */
  generated: string | null;
  /** Quoted collation name when it differs from the type's default, else `null`. */
  collation: string | null;
}

/** A PRIMARY KEY or UNIQUE constraint, or a unique index usable as an ON CONFLICT target. */
export interface CatalogUniqueKey {
  name: string;
  columns: string[];
  /** A constraint, or a unique index without predicate or expressions. */
  kind: 'constraint' | 'index';
}

/** A FOREIGN KEY of a {@link CatalogTable}. */
export interface CatalogForeignKey {
  name: string;
  /** Referencing columns, in key order. */
  columns: string[];
  /** The referenced table and columns, in the same order as `columns`. */
  references: { schema: string; table: string; columns: string[] };
  deferrable: boolean;
  initiallyDeferred: boolean;
  onDelete: ForeignKeyAction;
  onUpdate: ForeignKeyAction;
}

export type ForeignKeyAction = 'no action' | 'restrict' | 'cascade' | 'set null' | 'set default';

/** One ordinary or partitioned table. Views, foreign tables and sequences are not listed. */
export interface CatalogTable {
  schema: string;
  name: string;
  /** `schema.name` unquoted; the key other pgtwin layers use. */
  key: string;
  /** `"schema"."name"`, ready for SQL. */
  qualifiedName: string;
  columns: CatalogColumn[];
  /** Primary key columns in key order, or `null`. */
  primaryKey: string[] | null;
  /** UNIQUE constraints and plain unique indexes (the primary key is not repeated here). */
  uniqueKeys: CatalogUniqueKey[];
  foreignKeys: CatalogForeignKey[];
  /** Whether the table is partitioned (holds no rows itself; rows live in its partitions). */
  partitioned: boolean;
  /** `PARTITION BY` clause text (`RANGE (created_at)`) of a partitioned table, else `null`. */
  partitionKey: string | null;
  /** The parent when the table is a partition, else `null`. */
  partitionOf: { schema: string; table: string } | null;
  /** `FOR VALUES ...` text of a partition, else `null`. */
  partitionBound: string | null;
}

const CATEGORIES: Record<string, TypeCategory> = {
  A: 'array',
  B: 'boolean',
  C: 'composite',
  D: 'datetime',
  E: 'enum',
  G: 'geometric',
  I: 'network',
  N: 'numeric',
  P: 'pseudo',
  R: 'range',
  S: 'string',
  T: 'timespan',
  U: 'user',
  V: 'bitstring',
  X: 'unknown',
  Z: 'internal',
};

const TYPE_KINDS: Record<string, CatalogColumn['typeKind']> = {
  b: 'base',
  c: 'composite',
  d: 'domain',
  e: 'enum',
  p: 'pseudo',
  r: 'range',
  m: 'multirange',
};

const FK_ACTIONS: Record<string, ForeignKeyAction> = {
  a: 'no action',
  r: 'restrict',
  c: 'cascade',
  n: 'set null',
  d: 'set default',
};

// Run with an empty search_path (see inCatalogSnapshot) so every format_type / pg_get_expr is qualified.
const CATALOG_SQL = `
SELECT n.nspname AS schema, c.relname AS name, c.relkind = 'p' AS partitioned,
  CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partition_key,
  pn.nspname AS parent_schema, pc.relname AS parent_name,
  CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
  (SELECT coalesce(json_agg(json_build_object(
      'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
      'udtName', t.typname, 'udtSchema', tn.nspname, 'typtype', t.typtype, 'typcategory', t.typcategory,
      'elementType', CASE WHEN bt.typcategory = 'A' THEN pg_catalog.format_type(bt.typelem, NULL) END,
      'enumLabels', (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e
                     WHERE e.enumtypid = CASE WHEN bt.typcategory = 'A' THEN bt.typelem ELSE bt.oid END
                        OR e.enumtypid = (SELECT et.typbasetype FROM pg_catalog.pg_type et
                                          WHERE et.oid = bt.typelem AND et.typtype = 'd')),
      'notNull', a.attnotnull, 'hasDefault', a.atthasdef, 'identity', a.attidentity,
      'generated', a.attgenerated, 'expression', pg_catalog.pg_get_expr(ad.adbin, ad.adrelid),
      'collation', CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0 THEN
        pg_catalog.quote_ident(coll_n.nspname) || '.' || pg_catalog.quote_ident(coll.collname) END
    ) ORDER BY a.attnum), '[]')
   FROM pg_catalog.pg_attribute a
   JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
   JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
   JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
   LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   LEFT JOIN pg_catalog.pg_collation coll ON coll.oid = a.attcollation
   LEFT JOIN pg_catalog.pg_namespace coll_n ON coll_n.oid = coll.collnamespace
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
  (SELECT coalesce(json_agg(json_build_object(
      'name', k.conname, 'type', k.contype,
      'columns', (SELECT array_agg(ka.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(num, ord)
                  JOIN pg_catalog.pg_attribute ka ON ka.attrelid = k.conrelid AND ka.attnum = u.num),
      'refSchema', rn.nspname, 'refTable', rc.relname,
      'refColumns', (SELECT array_agg(ra.attname ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u(num, ord)
                     JOIN pg_catalog.pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = u.num),
      'deferrable', k.condeferrable, 'initiallyDeferred', k.condeferred,
      'onDelete', k.confdeltype, 'onUpdate', k.confupdtype
    ) ORDER BY k.conname), '[]')
   FROM pg_catalog.pg_constraint k
   LEFT JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
   LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
   -- A foreign key to a partitioned table is repeated for each referenced partition; keep the original.
   LEFT JOIN pg_catalog.pg_constraint pk ON pk.oid = k.conparentid
   WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'f')
     AND (pk.oid IS NULL OR pk.conrelid <> k.conrelid)) AS constraints,
  (SELECT coalesce(json_agg(json_build_object(
      'name', ic.relname,
      'columns', (SELECT array_agg(ia.attname ORDER BY u.ord) FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(num, ord)
                  JOIN pg_catalog.pg_attribute ia ON ia.attrelid = i.indrelid AND ia.attnum = u.num)
    ) ORDER BY ic.relname), '[]')
   FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
   WHERE i.indrelid = c.oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint x WHERE x.conindid = i.indexrelid AND x.conrelid = c.oid))
   AS unique_indexes
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_inherits inh ON c.relispartition AND inh.inhrelid = c.oid
LEFT JOIN pg_catalog.pg_class pc ON pc.oid = inh.inhparent
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])
  AND ($2::text[] IS NULL OR n.nspname || '.' || c.relname = ANY($2::text[]))
ORDER BY n.nspname, c.relname`;

interface CatalogRow {
  schema: string;
  name: string;
  partitioned: boolean;
  partition_key: string | null;
  parent_schema: string | null;
  parent_name: string | null;
  partition_bound: string | null;
  columns: {
    name: string;
    type: string;
    udtName: string;
    udtSchema: string;
    typtype: string;
    typcategory: string;
    elementType: string | null;
    enumLabels: string[] | null;
    notNull: boolean;
    hasDefault: boolean;
    identity: string;
    generated: string;
    expression: string | null;
    collation: string | null;
  }[];
  constraints: {
    name: string;
    type: 'p' | 'u' | 'f';
    columns: string[];
    refSchema: string | null;
    refTable: string | null;
    refColumns: string[] | null;
    deferrable: boolean;
    initiallyDeferred: boolean;
    onDelete: string;
    onUpdate: string;
  }[];
  unique_indexes: { name: string; columns: string[] }[];
}

/**
 * Reads the tables of the selected schemas: columns with their types, defaults, identity and generation;
 * keys; foreign keys; partitioning. One catalog query, in a short read-only transaction of its own (so a
 * client passed in must not be inside a transaction; pass a pool or a free client).
 *
 * @example
 * ```ts
 * const [entries] = (await readTableCatalog(client, { schemas: ['project_alpha'] }))
 *   .filter((t) => t.name === 'content_entries');
 * entries.foreignKeys[0].references; // { schema: 'public', table: 'object_models', columns: ['id'] }
 * ```
 */
export function readTableCatalog(queryable: Queryable, selection: SchemaSelection): Promise<CatalogTable[]> {
  return inCatalogSnapshot(queryable, async (client) =>
    queryTableCatalog(client, await resolveSchemas(client, selection)),
  );
}

/**
 * {@link readTableCatalog} for resolved schema names, on a client already inside {@link inCatalogSnapshot}
 * (the structure reader calls it in its own transaction). `only` narrows it to the tables of those keys
 * (`schema.table`), which costs far less than a whole schema when a database has many project schemas.
 */
export async function queryTableCatalog(
  queryable: Queryable,
  schemas: readonly string[],
  only?: readonly string[],
): Promise<CatalogTable[]> {
  const { rows } = await queryable.query<CatalogRow>(CATALOG_SQL, [schemas, only ?? null]);
  return rows.map(toCatalogTable);
}

/** A table known by name only: what naming and suggestions need, without the cost of a catalog read. */
export type TableName = Pick<CatalogTable, 'schema' | 'name' | 'key'>;

/**
 * The ordinary and partitioned tables of the schemas `selection` covers, by name, sorted: one cheap query
 * where {@link readTableCatalog} describes every column and key.
 *
 * @example
 * await readTableNames(client, { schemas: ['public'] }); // [{ schema: 'public', name: 'clients', key: 'public.clients' }, ...]
 */
export async function readTableNames(queryable: Queryable, selection: SchemaSelection): Promise<TableName[]> {
  const { rows } = await queryable.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_catalog.pg_class c
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')`,
  );
  const schemas = new Set(
    matchSchemas(
      rows.map((row) => row.schema),
      selection,
    ),
  );
  return rows
    .filter((row) => schemas.has(row.schema))
    .map((row) => ({ schema: row.schema, name: row.name, key: tableKey(row.schema, row.name) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** `schema.name`, the key of a table in {@link CatalogTable.key} and in foreign key references. */
export function tableKey(schema: string, name: string): string {
  return `${schema}.${name}`;
}

/** `"schema"."name"`, both parts always quoted. */
export function quoteQualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** Always-quoted identifier (`"a""b"`), safe for any name. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function toCatalogTable(row: CatalogRow): CatalogTable {
  const constraints = row.constraints;
  return {
    schema: row.schema,
    name: row.name,
    key: tableKey(row.schema, row.name),
    qualifiedName: quoteQualified(row.schema, row.name),
    columns: row.columns.map((column, index) => {
      const generated = column.generated === 's' ? column.expression : null;
      return {
        name: column.name,
        position: index + 1,
        type: column.type,
        udtName: column.udtName,
        udtSchema: column.udtSchema,
        typeKind: TYPE_KINDS[column.typtype] ?? 'base',
        category: CATEGORIES[column.typcategory] ?? 'user',
        isArray: column.elementType !== null,
        elementType: column.elementType,
        enumLabels: column.enumLabels,
        nullable: !column.notNull,
        hasDefault: column.hasDefault || column.identity !== '',
        default: generated === null ? column.expression : null,
        identity: column.identity === 'a' ? 'always' : column.identity === 'd' ? 'by-default' : null,
        generated,
        collation: column.collation,
      };
    }),
    primaryKey: constraints.find((c) => c.type === 'p')?.columns ?? null,
    uniqueKeys: [
      ...constraints
        .filter((c) => c.type === 'u')
        .map((c) => ({ name: c.name, columns: c.columns, kind: 'constraint' as const })),
      ...row.unique_indexes.map((i) => ({ name: i.name, columns: i.columns, kind: 'index' as const })),
    ],
    foreignKeys: constraints
      .filter((c) => c.type === 'f')
      .map((c) => ({
        name: c.name,
        columns: c.columns,
        references: { schema: c.refSchema!, table: c.refTable!, columns: c.refColumns! },
        deferrable: c.deferrable,
        initiallyDeferred: c.initiallyDeferred,
        onDelete: FK_ACTIONS[c.onDelete] ?? 'no action',
        onUpdate: FK_ACTIONS[c.onUpdate] ?? 'no action',
      })),
    partitioned: row.partitioned,
    partitionKey: row.partition_key,
    partitionOf: row.parent_schema === null ? null : { schema: row.parent_schema, table: row.parent_name! },
    partitionBound: row.partition_bound,
  };
}
