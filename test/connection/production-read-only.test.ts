import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DBConnector, DBOperator, ProductionGuardError, type ResolvedConfig } from 'pgtwin';
import { assertReadOnly, connect } from '../../src/connection/connect.js';
import { testConfig } from '../helpers/config.js';
import { adminQuery, useScratch } from '../helpers/databases.js';

const scratch = useScratch('readonly');
let production: { name: string; url: string };

beforeAll(async () => {
  production = await scratch.database('prod');
  await adminQuery('CREATE TABLE notes (body text)', [], production.url);
});

const OFF = '-c default_transaction_read_only=off';

/** What a production session says about itself, and what an INSERT through it does. */
async function probe(query: (sql: string) => Promise<pg.QueryResult>) {
  const readOnly = (await query('SHOW default_transaction_read_only')).rows[0]!.default_transaction_read_only;
  const insert = await query("INSERT INTO notes VALUES ('written')").then(
    () => 'inserted',
    (error: { code?: string }) => error.code,
  );
  return { readOnly, insert };
}

describe('production sessions stay read-only whatever settings are given', () => {
  const opened: { end(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const item of opened) await item.end();
    const { rows } = await adminQuery('SELECT count(*)::int AS n FROM notes', [], production.url);
    expect(rows[0]!.n).toBe(0);
  });

  async function productionConfig(overrides: { url?: string } = {}): Promise<ResolvedConfig> {
    return testConfig({ production: { database: production.name, ...overrides } });
  }

  it('keeps read-only when the pool is given its own options, and keeps those options too', async () => {
    const db = new DBOperator({
      config: await productionConfig(),
      pool: { options: '-c statement_timeout=5000' },
    });
    opened.push(db.connector);
    expect(await probe((sql) => db.query(sql))).toEqual({ readOnly: 'on', insert: '25006' });
    expect((await db.query('SHOW statement_timeout')).rows[0]!.statement_timeout).toBe('5s');
  });

  it('keeps read-only when the pool options switch it off explicitly', async () => {
    const connector = new DBConnector({ config: await productionConfig(), pool: { options: OFF } });
    opened.push(connector);
    expect(await probe((sql) => connector.query(sql))).toEqual({ readOnly: 'on', insert: '25006' });
  });

  it('keeps read-only when the production URL carries options=... switching it off', async () => {
    const url = new URL(production.url);
    url.searchParams.set('options', `-c statement_timeout=4000 ${OFF}`);
    const config = await productionConfig({ url: url.toString() });
    expect(config.production.options).toBe(`-c statement_timeout=4000 ${OFF}`);
    const connector = new DBConnector({ config });
    opened.push(connector);
    expect(await probe((sql) => connector.query(sql))).toEqual({ readOnly: 'on', insert: '25006' });
    expect((await connector.query('SHOW statement_timeout')).rows[0]!.statement_timeout).toBe('4s');

    const client = await connect(config.production, 'production', { options: OFF });
    opened.push(client);
    expect(await probe((sql) => client.query(sql))).toEqual({ readOnly: 'on', insert: '25006' });
  });

  it('keeps read-only when DATABASE_URL in the environment carries options=... switching it off', async () => {
    const url = new URL(production.url);
    url.searchParams.set('options', OFF);
    const config = await testConfig({ env: { DATABASE_URL: url.toString() } });
    expect(config.production.database).toBe(production.name);
    expect(config.sources['production.options']).toBe('DATABASE_URL (environment)');
    const connector = new DBConnector({ config });
    opened.push(connector);
    expect(await probe((sql) => connector.query(sql))).toEqual({ readOnly: 'on', insert: '25006' });
  });

  it('refuses a production session the server reports as writable, with a reason and the fix', async () => {
    const config = await productionConfig();
    const client = new pg.Client({ connectionString: production.url });
    await client.connect();
    opened.push(client);
    const error = await assertReadOnly(client, config.production).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProductionGuardError);
    expect((error as ProductionGuardError).reason).toBe('production-writable');
    expect((error as ProductionGuardError).message).toMatch(/default_transaction_read_only is off/);
  });
});
