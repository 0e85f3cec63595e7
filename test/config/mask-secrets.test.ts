import { describe, expect, it } from 'vitest';
import { ConfigError, maskSecrets, resolveConfig } from 'pgtwin';

describe('maskSecrets', () => {
  const cases: [string, string, string, string][] = [
    ['a plain URL password', 'postgres://app:s3cret@db/x', 'postgres://app:*****@db/x', 's3cret'],
    [
      'raw @, : and / inside the password',
      'postgres://user:p@ss:w/rd@host/db',
      'postgres://user:*****@host/db',
      'ss:w/rd',
    ],
    [
      'a raw @ in the password, in a sentence',
      'could not connect to postgres://user:p@ss@host:5432/db: refused',
      'could not connect to postgres://user:*****@host:5432/db: refused',
      'p@ss',
    ],
    [
      'a URL-encoded password',
      'postgresql://user:p%40ss%3Aw%2Frd@host/db',
      'postgresql://user:*****@host/db',
      'p%40ss',
    ],
    [
      'an invalid URL whose password holds raw @ and URL syntax',
      'postgres://user:p@ss@#:/?%@127.0.0.1/db',
      'postgres://user:*****@127.0.0.1/db',
      '#:/?%',
    ],
    ['PGPASSWORD=...', 'PGPASSWORD=hunter22 psql', 'PGPASSWORD=***** psql', 'hunter22'],
    ['TEST_DB_PASS=...', 'TEST_DB_PASS=hunter22', 'TEST_DB_PASS=*****', 'hunter22'],
    ['DB_PASS=...', 'DB_PASS=hunter22\nDB_USER=x', 'DB_PASS=*****\nDB_USER=x', 'hunter22'],
    ['password=... (libpq)', 'host=db password=hunter22 user=x', 'host=db password=***** user=x', 'hunter22'],
    ["password='...' (libpq, quoted)", "password='hun ter22' user=x", "password='*****' user=x", 'ter22'],
    ['JSON', '{"user": "x", "password": "hun\\"ter22"}', '{"user": "x", "password": "*****"}', 'ter22'],
    ["password: '...'", "password: 'hunter22'", "password: '*****'", 'hunter22'],
  ];
  it.each(cases)('masks %s', (_name, text, expected, secret) => {
    const masked = maskSecrets(text);
    expect(masked).toBe(expected);
    expect(masked).not.toContain(secret);
  });

  it('leaves URLs without a password and ordinary text alone', () => {
    expect(maskSecrets('postgres://user@host:5432/db')).toBe('postgres://user@host:5432/db');
    expect(maskSecrets('postgres://host:5432/db and more')).toBe('postgres://host:5432/db and more');
  });

  it('masks literal secrets, raw and URL-encoded', () => {
    expect(maskSecrets('said p@ss/x and p%40ss%2Fx', ['p@ss/x'])).toBe('said ***** and *****');
  });

  it('keeps a raw-@ password out of the ConfigError for an invalid URL', async () => {
    const error = await resolveConfig({
      configFile: false,
      envFiles: [],
      env: { DATABASE_URL: 'postgres://user:p@ss@#:/?%@127.0.0.1/db' },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    const { message, key } = error as ConfigError;
    expect(key).toBe('DATABASE_URL');
    expect(message).toContain('postgres://user:*****@127.0.0.1/db');
    for (const part of ['p@ss', 'ss@', '#:/?%']) expect(message).not.toContain(part);
  });
});
