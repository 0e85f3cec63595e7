import type pg from 'pg';

/** An object the structure cloner cannot recreate; see {@link findUnsupportedObjects}. */
export interface UnsupportedObject {
  /** `null` for database-wide objects (event triggers, publications). */
  schema: string | null;
  name: string;
  kind: string;
}

/** SQL condition: the object `oid` of `catalog` belongs to an extension (CREATE EXTENSION makes it). */
export function extensionMemberSql(catalog: string, oid: string): string {
  return `EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.${catalog}'::pg_catalog.regclass
     AND e.objid = ${oid} AND e.deptype = 'e')`;
}

// Everything a schema-only pg_dump of the selected schemas would show that readStructure does not
// recreate. Extension members are skipped: CREATE EXTENSION brings them back.
const UNSUPPORTED_SQL = `
SELECT NULL AS schema, evtname AS name, 'event trigger' AS kind FROM pg_catalog.pg_event_trigger
UNION ALL SELECT NULL, pubname, 'publication' FROM pg_catalog.pg_publication
UNION ALL SELECT n.nspname, c.relname, CASE c.relkind WHEN 'f' THEN 'foreign table' ELSE 'typed table' END
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY($1::text[]) AND (c.relkind = 'f' OR (c.reloftype <> 0 AND c.relkind IN ('r', 'p')))
    AND NOT ${extensionMemberSql('pg_class', 'c.oid')}
UNION ALL SELECT n.nspname, c.relname, 'table inheritance (INHERITS)'
  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
UNION ALL SELECT n.nspname, c.relname || '.' || r.rulename, 'rule'
  FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY($1::text[]) AND r.rulename <> '_RETURN'
UNION ALL SELECT n.nspname, c.relname || '.' || a.attname, 'column storage or statistics setting'
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'm') AND a.attnum > 0 AND NOT a.attisdropped
    AND (a.attstattarget >= 0 OR a.attstorage <> t.typstorage
         OR EXISTS (SELECT 1 FROM unnest(a.attoptions) o WHERE o LIKE 'n_distinct%'))
UNION ALL SELECT n.nspname, c.relname, 'replica identity'
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND c.relreplident <> 'd'
UNION ALL SELECT n.nspname, p.proname, CASE p.prokind WHEN 'a' THEN 'aggregate' ELSE 'window function' END
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = ANY($1::text[]) AND p.prokind IN ('a', 'w') AND NOT ${extensionMemberSql('pg_proc', 'p.oid')}
UNION ALL SELECT n.nspname, t.typname, CASE t.typtype WHEN 'p' THEN 'shell type' ELSE 'base type' END
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname = ANY($1::text[]) AND (t.typtype = 'p' OR (t.typtype = 'b'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)))
    AND NOT ${extensionMemberSql('pg_type', 't.oid')}
UNION ALL SELECT n.nspname, r.rngtypid::pg_catalog.regtype::text, 'range type with canonical function'
  FROM pg_catalog.pg_range r JOIN pg_catalog.pg_type t ON t.oid = r.rngtypid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname = ANY($1::text[]) AND r.rngcanonical <> 0 AND NOT ${extensionMemberSql('pg_type', 't.oid')}
UNION ALL SELECT n.nspname, o.oprname, 'operator' FROM pg_catalog.pg_operator o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
  WHERE n.nspname = ANY($1::text[]) AND NOT ${extensionMemberSql('pg_operator', 'o.oid')}
UNION ALL SELECT n.nspname, o.opfname, 'operator family' FROM pg_catalog.pg_opfamily o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.opfnamespace
  WHERE n.nspname = ANY($1::text[]) AND NOT ${extensionMemberSql('pg_opfamily', 'o.oid')}
UNION ALL SELECT n.nspname, o.opcname, 'operator class' FROM pg_catalog.pg_opclass o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.opcnamespace
  WHERE n.nspname = ANY($1::text[]) AND NOT ${extensionMemberSql('pg_opclass', 'o.oid')}
UNION ALL SELECT n.nspname, o.collname, 'collation' FROM pg_catalog.pg_collation o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.collnamespace
  WHERE n.nspname = ANY($1::text[]) AND NOT ${extensionMemberSql('pg_collation', 'o.oid')}
UNION ALL SELECT n.nspname, o.conname, 'conversion' FROM pg_catalog.pg_conversion o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.connamespace
  WHERE n.nspname = ANY($1::text[]) AND NOT ${extensionMemberSql('pg_conversion', 'o.oid')}
UNION ALL SELECT n.nspname, o.stxname, 'extended statistics' FROM pg_catalog.pg_statistic_ext o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.stxnamespace
  WHERE n.nspname = ANY($1::text[]) AND NOT ${extensionMemberSql('pg_statistic_ext', 'o.oid')}
UNION ALL SELECT n.nspname, o.cfgname, 'text search configuration' FROM pg_catalog.pg_ts_config o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.cfgnamespace
  WHERE n.nspname = ANY($1::text[]) AND NOT ${extensionMemberSql('pg_ts_config', 'o.oid')}
UNION ALL SELECT n.nspname, o.dictname, 'text search dictionary' FROM pg_catalog.pg_ts_dict o
  JOIN pg_catalog.pg_namespace n ON n.oid = o.dictnamespace
  WHERE n.nspname = ANY($1::text[]) AND NOT ${extensionMemberSql('pg_ts_dict', 'o.oid')}
ORDER BY 3, 1, 2`;

/**
 * Objects in `schemas` (and database-wide event triggers and publications) that readStructure cannot
 * recreate. Reported up front so a clone is never silently partial.
 */
export async function findUnsupportedObjects(
  client: pg.ClientBase,
  schemas: readonly string[],
): Promise<UnsupportedObject[]> {
  const { rows } = await client.query<UnsupportedObject>(UNSUPPORTED_SQL, [schemas]);
  return rows;
}
