import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll } from 'vitest';
import type { MirrorPolicy } from '../../src/mirror/index.js';

/** The default policy, as `resolveConfig` produces it. */
export const POLICY: MirrorPolicy = {
  mirror: {
    full: ['public.object_models', 'public.prompts'],
    structureOnly: ['public.projects', 'public.clients'],
  },
  projectSchemas: 'project_*',
};

/**
 * Structure shared by the source and the target of the mirror tests: two mirrored tables (serial, identity,
 * generated column, arrays, jsonb, bytea, infinities), a structure-only table and a project schema that
 * reference them, and an audit trigger that must not fire during a load.
 */
export const STRUCTURE_SQL = `
CREATE TABLE public.object_models (
  id serial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  label text,
  label_upper text GENERATED ALWAYS AS (upper(label)) STORED
);
CREATE TABLE public.prompts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  object_model_id int REFERENCES public.object_models (id) ON DELETE CASCADE,
  body text,
  tags text[],
  data jsonb,
  raw bytea,
  due date,
  happened_at timestamptz,
  local_at timestamp,
  price numeric,
  ratio double precision,
  small real,
  span interval,
  money_value money
);
CREATE TABLE public.clients (id serial PRIMARY KEY, name text);
CREATE TABLE public.projects (
  id serial PRIMARY KEY,
  object_model_id int REFERENCES public.object_models (id) ON DELETE CASCADE,
  name text
);
CREATE SCHEMA project_alpha;
CREATE TABLE project_alpha.entries (id serial PRIMARY KEY, prompt_id bigint REFERENCES public.prompts (id), note text);
CREATE TABLE public.trigger_log (event text);
CREATE FUNCTION public.rewrite_prompt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.body := 'rewritten by trigger';
  INSERT INTO public.trigger_log VALUES (TG_OP || ' ' || TG_TABLE_NAME);
  RETURN NEW;
END $$;
CREATE TRIGGER rewrite BEFORE INSERT OR UPDATE ON public.prompts FOR EACH ROW EXECUTE FUNCTION public.rewrite_prompt();
CREATE FUNCTION public.log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.trigger_log VALUES (TG_OP || ' ' || TG_TABLE_NAME);
  RETURN NULL;
END $$;
CREATE TRIGGER log_change AFTER INSERT OR UPDATE OR DELETE ON public.object_models FOR EACH ROW EXECUTE FUNCTION public.log_change();
`;

/** Production rows, with every value text COPY and checksums could get wrong. */
export const PRODUCTION_ROWS_SQL = `
ALTER TABLE public.prompts DISABLE TRIGGER rewrite;
INSERT INTO public.object_models (name, label) VALUES
  ('article', 'Article'), ('empty-label', ''), ('null-label', NULL), ('unicode', 'Ünïcødé 🚀 ñ 日本語 e\u0301');
INSERT INTO public.prompts (object_model_id, body, tags, data, raw, due, happened_at, local_at, price, ratio, small, span, money_value) VALUES
  (1, E'tab\\there\\nnewline\\r\\nback\\\\slash \\\\N end', ARRAY[NULL, 'quo"te', 'com,ma', 'NULL', '', 'back\\slash', '{brace}'],
   '{"a": [1, 2.50, null], "s": "quo\\"te \\\\ \\u00e9", "n": {"deep": true}}', '\\x00ff5c0a0d09'::bytea,
   'infinity', '-infinity', 'infinity', 12345678901234567890.123456789012345678, 0.1 + 0.2, 3.4028235e38, '1 year 2 mons 3 days 04:05:06.789', 1234.56),
  (2, '', '{}', '"just a string"', '', '-infinity', 'infinity', '-infinity', 'NaN', 'NaN', '-Infinity', '-00:00:00.000001', 0),
  (3, NULL, NULL, 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, '\\N', ARRAY['\\N'], '{}', '\\x'::bytea, '0044-03-15 BC', '2024-02-29 23:59:59.999999+05:45', '2000-01-01 00:00:00.000001', -0.0000000000000000000001, 1e-308, 1.17549435e-38, '-178000000 years', -92233720368547758.08),
  (NULL, E'line1\\nline2\\\\.\\n\\\\.', ARRAY[ARRAY['a','b'],ARRAY['c',NULL]], '[]', '\\x5c2e'::bytea, '2024-01-31', '1970-01-01 00:00:00+00', '1999-12-31 23:59:59', 0, -0.0, 1, '0', 0.01);
SELECT setval('public.object_models_id_seq', 40, true);
SELECT setval(pg_get_serial_sequence('public.prompts', 'id'), 77, false);
ALTER TABLE public.prompts ENABLE TRIGGER rewrite;
`;

/** Connects to `url`; as production (read-only) or with odd session settings that must not matter. */
export async function connectTo(
  url: string,
  options: { readOnly?: boolean; settings?: string } = {},
): Promise<pg.Client> {
  const flags = [options.readOnly ? '-c default_transaction_read_only=on' : '', options.settings ?? ''];
  const client = new pg.Client({ connectionString: url, options: flags.join(' ').trim() || undefined });
  await client.connect();
  return client;
}

/**
 * A production for the file: a scratch database with the contentgen structure and rows, and a read-only
 * connection to it with odd session settings (closed with the file's other connections, `open`).
 */
export async function productionSource(
  scratch: { database(label: string): Promise<{ url: string }> },
  open: pg.Client[],
): Promise<{ source: pg.Client; sourceUrl: string }> {
  const { url: sourceUrl } = await scratch.database('source');
  const setup = await connectTo(sourceUrl);
  await setup.query(STRUCTURE_SQL);
  await setup.query(PRODUCTION_ROWS_SQL);
  await setup.end();
  const source = await connectTo(sourceUrl, { readOnly: true, settings: ODD_SOURCE_SETTINGS });
  open.push(source);
  return { source, sourceUrl };
}

/** Session defaults unlike each other and unlike UTC/ISO, applied to the two ends of a copy. */
export const ODD_SOURCE_SETTINGS =
  '-c TimeZone=Pacific/Chatham -c DateStyle=SQL,DMY -c IntervalStyle=sql_standard -c extra_float_digits=-3 -c bytea_output=escape';
export const ODD_TARGET_SETTINGS =
  '-c TimeZone=America/St_Johns -c DateStyle=German -c IntervalStyle=iso_8601';

/** Creates temporary directories for one test file and removes them after it. Call at the top level. */
export function useTempDirs(): (prefix: string) => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  return async (prefix) => {
    const dir = await mkdtemp(path.join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}
