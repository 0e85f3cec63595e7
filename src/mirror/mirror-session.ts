import type pg from 'pg';

/**
 * Session settings under which COPY text and row checksums are produced and read. Text COPY and `row::text`
 * render dates, intervals, floats, money and bytea according to these, so both ends of a copy (and every
 * checksum) must use the same values whatever the servers' or roles' defaults are.
 */
export const MIRROR_SESSION_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  client_encoding: 'UTF8',
  DateStyle: 'ISO, YMD',
  IntervalStyle: 'postgres',
  TimeZone: 'UTC',
  // Any value above 0 prints the shortest text that reads back to the identical float.
  extra_float_digits: '1',
  bytea_output: 'hex',
  lc_monetary: 'C',
  xmloption: 'content',
  // Values of reg* types print schema-qualified, so they read back to the same object.
  search_path: 'pg_catalog',
});

/**
 * Opens the read-only REPEATABLE READ transaction all reads of one mirror operation share, so the
 * tables read are mutually consistent. Call on a client with no open transaction.
 */
export async function beginSnapshot(client: pg.ClientBase): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await applySessionSettings(client);
}

/**
 * Sets `settings` for the rest of the current transaction: {@link MIRROR_SESSION_SETTINGS}, or the ones a
 * dump was written under.
 */
export async function applySessionSettings(
  client: pg.ClientBase,
  settings: Readonly<Record<string, string>> = MIRROR_SESSION_SETTINGS,
): Promise<void> {
  await client.query(
    `SELECT pg_catalog.set_config(name, setting, true) FROM unnest($1::text[], $2::text[]) AS s(name, setting)`,
    [Object.keys(settings), Object.values(settings)],
  );
}
