import type pg from 'pg';

const versions = new WeakMap<object, number>();

/**
 * The server's `server_version_num` (e.g. `150004` for 15.4), asked once per connection or pool.
 *
 * @example
 * if ((await serverVersion(admin)) >= 150000) await admin.query('GRANT SET ON PARAMETER …');
 */
export async function serverVersion(client: pg.ClientBase | pg.Pool): Promise<number> {
  let version = versions.get(client);
  if (version === undefined) {
    const { rows } = await client.query<{ v: string }>(
      `SELECT pg_catalog.current_setting('server_version_num') AS v`,
    );
    version = Number(rows[0]!.v);
    versions.set(client, version);
  }
  return version;
}
