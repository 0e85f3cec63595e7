import { describe, expect, it } from 'vitest';
import {
  DatabaseSyncManager,
  DBConnector,
  DBOperator,
  ProductionGuardError,
  dropTestDatabase,
  guardDestructive,
} from 'pgtwin';
import { closedPort } from '../helpers/closed-port.js';
import { writeMarker, newMarker } from '../../src/guard/test-marker.js';
import { testConfig } from '../helpers/config.js';
import { adminQuery, useScratch } from '../helpers/databases.js';
import pg from 'pg';

const scratch = useScratch('guard');

async function stamp(database: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
  await client.connect();
  await writeMarker(client, database, newMarker('test'));
  await client.end();
}

async function refusal(promise: Promise<unknown>): Promise<ProductionGuardError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProductionGuardError);
  return error as ProductionGuardError;
}

async function databaseExists(name: string): Promise<boolean> {
  return (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
}

describe('production is read-only to pgtwin', () => {
  it('fails a write attempted through a production connection as read-only', async () => {
    const prod = await scratch.database('prod');
    await adminQuery('CREATE TABLE prompts (id int)', [], prod.url);
    await using connector = new DBConnector({
      config: await testConfig({ production: { database: prod.name } }),
    });
    expect(connector.isProduction).toBe(true);
    await expect(connector.query('INSERT INTO prompts VALUES (1)')).rejects.toMatchObject({ code: '25006' });
    await expect(connector.query('CREATE TABLE t (id int)')).rejects.toThrow(/read-only transaction/);
    await expect(connector.query('BEGIN; INSERT INTO prompts VALUES (2); COMMIT')).rejects.toMatchObject({
      code: '25006',
    });
    expect((await adminQuery('SELECT count(*)::int AS n FROM prompts', [], prod.url)).rows[0]!.n).toBe(0);
    expect((await connector.query('SELECT count(*)::int AS n FROM prompts')).rows[0]!.n).toBe(0);
  });

  it('rejects a test mode other than e2e', () => {
    expect(() => new DBOperator({ testMode: 'unit' as never })).toThrow(/testMode must be 'e2e'/);
  });
});

describe('the production guard', () => {
  it('refuses to drop the production database when TEST_DB_NAME equals DB_NAME', async () => {
    const prod = await scratch.database('prod');
    await stamp(prod.name); // even a marker does not make production disposable
    const config = await testConfig({
      env: { DB_NAME: prod.name, TEST_DB_NAME: prod.name },
      production: { database: undefined },
      test: { database: undefined },
    });
    expect(config.test.database).toBe(prod.name);
    const error = await refusal(dropTestDatabase(config));
    expect(error.reason).toBe('is-production');
    expect(error.message).toContain('it is the production database');
    expect(error.message).toContain('TEST_DB_NAME');
    expect(await databaseExists(prod.name)).toBe(true);
  });

  it('refuses to drop production reached as localhost when it is configured at 127.0.0.1', async () => {
    const prod = await scratch.database('prod');
    await stamp(prod.name);
    const config = await testConfig({
      production: { host: '127.0.0.1', database: prod.name },
      test: { host: 'localhost', database: prod.name },
    });
    const error = await refusal(dropTestDatabase(config));
    expect(error.reason).toBe('is-production');
    expect(await databaseExists(prod.name)).toBe(true);
  });

  it('refuses before connecting a test database named as production on the Unix socket of its loopback port', async () => {
    const prod = await scratch.database('prod');
    await stamp(prod.name);
    const config = await testConfig({
      production: { host: '127.0.0.1', database: prod.name },
      test: { host: '/var/run/postgresql', database: prod.name },
    });
    const error = await refusal(guardDestructive({ config, target: config.test, operation: 'reset' }));
    expect(error.reason).toBe('is-production');
    expect(error.message).toContain('the same name on the same address as DB_HOST:DB_PORT');
  });

  it('recognises production by server identity when reached through the Unix socket', async () => {
    const prod = await scratch.database('prod');
    await stamp(prod.name);
    const config = await testConfig({
      production: { host: '127.0.0.1', database: prod.name },
      test: { host: '/var/run/postgresql', database: prod.name },
      admin: { host: '/var/run/postgresql' },
    });
    const error = await refusal(dropTestDatabase(config));
    expect(error.reason).toBe('is-production');
    expect(error.message).toMatch(/same server by system identifier \d+, same database OID \d+/);
    expect(await databaseExists(prod.name)).toBe(true);
  });

  it('refuses a database without the pgtwin marker unless PGTWIN_ALLOW_UNMARKED=1', async () => {
    const prod = await scratch.database('prod');
    const other = await scratch.database('other');
    const config = await testConfig({ production: { database: prod.name }, test: { database: other.name } });
    const error = await refusal(dropTestDatabase(config));
    expect(error.reason).toBe('unmarked');
    expect(error.message).toContain('PGTWIN_ALLOW_UNMARKED=1');
    expect(await databaseExists(other.name)).toBe(true);

    const allowed = await testConfig({
      env: { PGTWIN_ALLOW_UNMARKED: '1' },
      production: { database: prod.name },
      test: { database: other.name },
    });
    const cleared = await guardDestructive({ config: allowed, target: allowed.test, operation: 'reset' });
    expect(cleared.cleared).toBe(true);
    expect(await dropTestDatabase(allowed)).toBe(true);
    expect(await databaseExists(other.name)).toBe(false);
  });

  it('clears a marked test database on another name of the same server', async () => {
    const prod = await scratch.database('prod');
    const test = await scratch.database('twin');
    await stamp(test.name);
    const config = await testConfig({
      production: { database: prod.name },
      test: { database: test.name, host: 'localhost' },
    });
    const cleared = await guardDestructive({ config, target: config.test, operation: 'reset' });
    expect(cleared.database).toBe(test.name);
  });

  it('fails closed: production unreachable, an unmarked database is refused even with PGTWIN_ALLOW_UNMARKED=1', async () => {
    const prod = await scratch.database('prod');
    await adminQuery('CREATE TABLE prompts (id int); INSERT INTO prompts VALUES (1)', [], prod.url);
    const config = await testConfig({
      env: { PGTWIN_ALLOW_UNMARKED: '1' },
      production: { host: '127.0.0.1', port: await closedPort(), database: prod.name },
      test: { host: '/var/run/postgresql', database: prod.name },
      admin: { host: '/var/run/postgresql' },
    });
    await using sync = new DatabaseSyncManager({ config });
    const error = await refusal(sync.restoreDump({ dir: '/nonexistent-dump' }));
    expect(error.reason).toBe('production-unknown');
    expect(error.message).toMatch(/production's identity could not be read \(Cannot connect/);
    expect(error.message).toContain('PGTWIN_ALLOW_UNMARKED=1 does not lift this');
    expect(error.message).toContain('DB_HOST');
    expect((await refusal(dropTestDatabase(config))).reason).toBe('production-unknown');
    expect(await databaseExists(prod.name)).toBe(true);
    expect((await adminQuery('SELECT count(*)::int AS n FROM prompts', [], prod.url)).rows[0]).toEqual({
      n: 1,
    });
  });

  it('fails closed when production refuses the login, and still allows a marked test database', async () => {
    const prod = await scratch.database('prod');
    const twin = await scratch.database('twin');
    await stamp(twin.name);
    const config = await testConfig({
      env: { PGTWIN_ALLOW_UNMARKED: '1' },
      production: { user: 'pgtwin_no_such_role', database: prod.name },
      test: { database: prod.name },
    });
    expect((await refusal(dropTestDatabase(config))).reason).toBe('production-unknown');
    const marked = await testConfig({
      production: { user: 'pgtwin_no_such_role', database: prod.name },
      test: { database: twin.name },
    });
    expect(
      (await guardDestructive({ config: marked, target: marked.test, operation: 'reset' })).database,
    ).toBe(twin.name);
  });

  it('refuses a connection that lands in another database than the one asked for', async () => {
    const prod = await scratch.database('prod');
    const twin = await scratch.database('twin');
    const other = await scratch.database('other');
    await stamp(twin.name);
    await stamp(other.name);
    const config = await testConfig({ production: { database: prod.name }, test: { database: twin.name } });
    const client = new pg.Client({ connectionString: other.url });
    await client.connect();
    try {
      const error = await refusal(guardDestructive({ config, client, operation: 'reset' }));
      expect(error.reason).toBe('unexpected-database');
      expect(error.message).toContain(`landed in the database "${other.name}"`);
    } finally {
      await client.end();
    }
  });

  it('refuses, on the very connection, production reached under another name', async () => {
    const prod = await scratch.database('prod');
    const config = await testConfig({
      production: { database: prod.name },
      test: { database: 'anything_else' },
    });
    const client = new pg.Client({ connectionString: prod.url });
    await client.connect();
    try {
      const error = await refusal(
        guardDestructive({ config, client, database: 'anything_else', operation: 'seed' }),
      );
      expect(error.reason).toBe('is-production');
      expect(error.message).toContain('reached under the name "anything_else"');
    } finally {
      await client.end();
    }
  });
});
