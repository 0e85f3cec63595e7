import { createHash } from 'node:crypto';
import pg from 'pg';
import { DemoError } from './demo-error.mjs';

/** The comment on the demo's production database: a rerun drops production only when it finds this. */
export const DEMO_PRODUCTION_MARKER = 'pgtwin demo production, made by scripts/demo.mjs';

/** Runs `fn` with a client connected to `target` (a pgtwin `DatabaseTarget`), closed afterwards. */
export async function withClient(target, fn) {
  const client = new pg.Client(target.clientConfig());
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Drops what an earlier demo left on the server, test side first (the guard reads production to recognise
 * it): the test database, its template and any per-file copies, each only after pgtwin's guard cleared it,
 * then production, only when it carries {@link DEMO_PRODUCTION_MARKER}.
 */
export async function resetDemoDatabases(pgtwin, config) {
  const production = config.production.database;
  const test = config.test.database;
  await withClient(config.admin, async (admin) => {
    const { rows } = await admin.query(
      `SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2 ORDER BY datname <> $1, datname`,
      [test, `${test}\\_%`],
    );
    for (const { datname } of rows) {
      await pgtwin.guardDestructive({ config, admin, database: datname, operation: 'drop' });
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(datname)} WITH (FORCE)`);
    }
    const { rows: existing } = await admin.query(
      `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`,
      [production],
    );
    if (existing.length > 0 && existing[0].comment !== DEMO_PRODUCTION_MARKER) {
      throw new DemoError(
        `${production} on ${config.admin.host}:${config.admin.port} exists and was not made by the demo, which ` +
          `will not drop it. Run the demo on embedded PostgreSQL (unset PGTWIN_PROVIDER).`,
      );
    }
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(production)} WITH (FORCE)`);
  });
}

/** Creates the demo's production database from the contentgen fixture, with sample data. */
export async function buildProduction(pgtwin, config) {
  const { database } = config.production;
  await withClient(config.admin, async (admin) => {
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
    await admin.query(
      `COMMENT ON DATABASE ${admin.escapeIdentifier(database)} IS ${admin.escapeLiteral(DEMO_PRODUCTION_MARKER)}`,
    );
  });
  await withClient(config.admin.withDatabase(database), (client) =>
    pgtwin.fixture.createContentgenProduction(client, { data: pgtwin.fixture.FIXTURE_SIZES.small }),
  );
}

/**
 * Every table of `target` holding rows (partitions, not their parents, so each row counts once), with its
 * row count and a checksum of its rows in a stable order: `Map<"schema.table", { rows, checksum }>`.
 */
export async function tableContents(target) {
  return withClient(target, async (client) => {
    const { rows: tables } = await client.query(
      `SELECT n.nspname AS schema, c.relname AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1, 2`,
    );
    const contents = new Map();
    for (const { schema, name } of tables) {
      const table = `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)}`;
      const { rows } = await client.query(
        `SELECT count(*)::int AS rows,
                md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) AS checksum
           FROM ${table} t`,
      );
      contents.set(`${schema}.${name}`, rows[0]);
    }
    return contents;
  });
}

/** Total rows of a {@link tableContents} result. */
export function totalRows(contents) {
  let total = 0;
  for (const { rows } of contents.values()) total += rows;
  return total;
}

/** One checksum over a {@link tableContents} result. */
export function overallChecksum(contents) {
  const text = [...contents].map(([table, { rows, checksum }]) => `${table}:${rows}:${checksum}`).join('\n');
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** The names of the databases on the admin connection's server whose names start with `prefix`. */
export async function databasesNamed(admin, prefix) {
  return withClient(admin, async (client) => {
    const { rows } = await client.query(`SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, [
      prefix,
    ]);
    return rows.map((row) => row.datname);
  });
}
