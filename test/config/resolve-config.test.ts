import path from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from 'pgtwin';
import { configProject as project } from '../helpers/config-project.js';

async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('resolveConfig', () => {
  it('uses the documented defaults when nothing is configured', async () => {
    const config = await resolveConfig({ rootDir: project({}), env: {} });
    expect(config.production.describe()).toBe('postgres@localhost:5432/contentgen_db');
    expect(config.test.describe()).toBe('test_runner_user@localhost:5432/contentgen_test_db');
    expect(config.test.password).toBe('test123');
    expect(config.admin.describe()).toBe('postgres@localhost:5432/postgres');
    expect(config.mirror.full).toEqual(['public.object_models', 'public.prompts']);
    expect(config.mirror.structureOnly).toEqual(['public.projects', 'public.clients', 'public.llm_usage']);
    expect(config.projectSchemas).toBe('project_*');
    expect(config.seeds).toEqual([path.join(config.rootDir, 'tests/data/seed_data.json')]);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('applies options over the config file over the real environment over .env over defaults', async () => {
    const rootDir = project({
      'pgtwin.config.ts': `interface Shape { test: { port: number; host: string }; projectSchemas: string }
        const config: Shape = { test: { port: 6001, host: 'file-host' }, projectSchemas: 'proj_*' };
        export default config;`,
      '.env':
        'TEST_DB_PORT=7001\nTEST_DB_HOST=dotenv-host\nTEST_DB_NAME=dotenv_db\nTEST_DB_USER=dotenv_user\nDB_NAME=prod_from_dotenv\n',
    });
    const env = { TEST_DB_HOST: 'env-host', TEST_DB_NAME: 'env_db' };
    const config = await resolveConfig({ rootDir, env, test: { port: 5001 } });
    expect(config.test.port).toBe(5001); // options beat file, env and .env
    expect(config.test.host).toBe('file-host'); // file beats env and .env
    expect(config.test.database).toBe('env_db'); // real env beats .env
    expect(config.test.user).toBe('dotenv_user'); // .env beats default
    expect(config.test.password).toBe('test123'); // default
    expect(config.production.database).toBe('prod_from_dotenv');
    expect(config.projectSchemas).toBe('proj_*');
    expect(config.sources['test.port']).toBe('options');
    expect(config.sources['test.host']).toBe('pgtwin.config.ts');
    expect(config.sources['test.database']).toBe('TEST_DB_NAME (environment)');
    expect(config.sources['test.user']).toBe('TEST_DB_USER (.env)');
    expect(config.sources['test.password']).toBe('default');
  });

  it('reads PGTWIN_DEBUG and PGTWIN_REBUILD through .env like every other setting, and validates them', async () => {
    const rootDir = project({ '.env.test': 'PGTWIN_DEBUG=1\nPGTWIN_REBUILD=true\n' });
    const config = await resolveConfig({ rootDir, env: {}, envFiles: ['.env.test'] });
    expect([config.debug, config.rebuild]).toEqual([true, true]);
    expect(config.sources.debug).toBe('PGTWIN_DEBUG (.env.test)');
    const quiet = await resolveConfig({ rootDir: project({}), env: {} });
    expect([quiet.debug, quiet.rebuild]).toEqual([false, false]);
    expect((await resolveConfig({ rootDir, env: {}, envFiles: ['.env.test'], rebuild: false })).rebuild).toBe(
      false,
    );
    const bad = await resolveConfig({ rootDir: project({}), env: { PGTWIN_REBUILD: 'please' } }).catch(
      (e: unknown) => e,
    );
    expect(bad).toBeInstanceOf(ConfigError);
    expect((bad as ConfigError).message).toBe(
      'PGTWIN_REBUILD (from environment) must be 1 or 0, got "please".',
    );
  });

  it('accepts DATABASE_URL and TEST_DATABASE_URL, with discrete variables winning over URL parts', async () => {
    const config = await resolveConfig({
      rootDir: project({}),
      env: {
        DATABASE_URL: 'postgres://reader:pw%40x@prod.example:6543/live',
        TEST_DATABASE_URL: 'postgresql://tester:tpw@test.example:6544/twin',
        TEST_DB_NAME: 'twin_override',
        TEST_DB_ADMIN_URL: 'postgres://root:rootpw@test.example:6544/postgres',
      },
    });
    expect(config.production.describe()).toBe('reader@prod.example:6543/live');
    expect(config.production.password).toBe('pw@x');
    expect(config.test.describe()).toBe('tester@test.example:6544/twin_override');
    expect(config.admin.describe()).toBe('root@test.example:6544/postgres');
  });

  it('loads a JSON config file and a named .env file', async () => {
    const rootDir = project({
      'pgtwin.config.json': JSON.stringify({ mirror: { full: ['prompts'] }, seeds: ['a.json', 'b.json'] }),
      'ci.env': 'DB_HOST=ci-host\n',
    });
    const config = await resolveConfig({ rootDir, env: {}, envFiles: ['ci.env'] });
    expect(config.mirror.full).toEqual(['public.prompts']);
    expect(config.seeds).toEqual([path.join(rootDir, 'a.json'), path.join(rootDir, 'b.json')]);
    expect(config.production.host).toBe('ci-host');
  });

  it('names the variable and the expected form for a port that is not a number', async () => {
    const error = await configError(
      resolveConfig({ rootDir: project({ '.env': 'TEST_DB_PORT=abc\n' }), env: {} }),
    );
    expect(error.key).toBe('TEST_DB_PORT');
    expect(error.message).toBe('TEST_DB_PORT (from .env) must be a port number from 1 to 65535, got "abc".');
  });

  it('names an unknown config-file key and suggests the closest one', async () => {
    const rootDir = project({ 'pgtwin.config.mjs': 'export default { mirorr: { full: [] } };' });
    const error = await configError(resolveConfig({ rootDir, env: {} }));
    expect(error.key).toBe('mirorr');
    expect(error.message).toContain('Unknown key "mirorr" in config file');
    expect(error.message).toContain('did you mean "mirror"?');
    const nested = await configError(
      resolveConfig({ rootDir: project({}), env: {}, test: { hots: 'x' } as never }),
    );
    expect(nested.message).toContain('Unknown key "test.hots" in options (did you mean "host"?)');
  });

  it('rejects a malformed URL, naming the variable and masking the password', async () => {
    const error = await configError(
      resolveConfig({ rootDir: project({}), env: { DATABASE_URL: 'mysql://app:hunter22@db:3306/x' } }),
    );
    expect(error.key).toBe('DATABASE_URL');
    expect(error.message).toContain('must start with postgres:// or postgresql://');
    const broken = await configError(
      resolveConfig({ rootDir: project({}), env: { TEST_DATABASE_URL: 'not a url:hunter22@' } }),
    );
    expect(broken.key).toBe('TEST_DATABASE_URL');
    expect(broken.message).toContain('is not a valid URL');
    expect(`${error.message} ${broken.message}`).not.toContain('hunter22');
  });

  it('rejects wrong types, a table in both mirror lists and a bad schema pattern', async () => {
    const rootDir = project({});
    const port = await configError(resolveConfig({ rootDir, env: {}, test: { port: 70000 } }));
    expect(port.message).toBe('test.port in options must be a port number from 1 to 65535, got 70000.');
    const both = await configError(
      resolveConfig({ rootDir, env: {}, mirror: { full: ['prompts'], structureOnly: ['public.prompts'] } }),
    );
    expect(both.message).toContain('public.prompts is listed in both mirror.full and mirror.structureOnly');
    const table = await configError(resolveConfig({ rootDir, env: {}, mirror: { full: ['a.b.c'] } }));
    expect(table.key).toBe('mirror.full');
    const pattern = await configError(resolveConfig({ rootDir, env: {}, projectSchemas: 'project-*' }));
    expect(pattern.key).toBe('projectSchemas');
    const flag = await configError(resolveConfig({ rootDir, env: { PGTWIN_ALLOW_UNMARKED: 'maybe' } }));
    expect(flag.message).toBe('PGTWIN_ALLOW_UNMARKED (from environment) must be 1 or 0, got "maybe".');
  });

  it('reports a config file that does not load, naming the file', async () => {
    const rootDir = project({ 'pgtwin.config.js': 'export default {' });
    const error = await configError(resolveConfig({ rootDir, env: {} }));
    expect(error.message).toContain(path.join(rootDir, 'pgtwin.config.js'));
    const missing = await configError(resolveConfig({ rootDir, env: {}, configFile: 'nope.ts' }));
    expect(missing.message).toContain('does not exist');
  });

  it('never shows passwords when a resolved config is printed', async () => {
    const config = await resolveConfig({
      rootDir: project({}),
      env: { DB_PASS: 'prod-secret-1', TEST_DATABASE_URL: 'postgres://u:test-secret-2@h/db' },
    });
    const printed = [
      inspect(config, { depth: 5 }),
      JSON.stringify(config),
      String(config.test),
      config.production.url(),
    ].join('\n');
    expect(printed).not.toContain('prod-secret-1');
    expect(printed).not.toContain('test-secret-2');
    expect(config.test.url({ withPassword: true })).toContain('test-secret-2');
  });

  describe('layers: a lower layer never overrides any part of a target a higher layer set', () => {
    const cases: {
      name: string;
      env?: Record<string, string>;
      dotenv?: string;
      file?: Record<string, unknown>;
      options?: Record<string, unknown>;
      expect: Record<string, string | number>;
      sources?: Record<string, string>;
    }[] = [
      {
        name: 'in one layer, fields win over the parts of its URL',
        env: { DATABASE_URL: 'postgres://u:p@url-host:6000/url_db', DB_HOST: 'field-host' },
        expect: { 'production.host': 'field-host', 'production.port': 6000, 'production.database': 'url_db' },
        sources: {
          'production.host': 'DB_HOST (environment)',
          'production.port': 'DATABASE_URL (environment)',
        },
      },
      {
        name: "a real DATABASE_URL beats .env's DB_HOST, DB_PORT and DB_NAME",
        env: { DATABASE_URL: 'postgres://u:p@real-host:6000/real_db' },
        dotenv: 'DB_HOST=dotenv-host\nDB_PORT=7000\nDB_NAME=dotenv_db\nDB_PASS=dotenv-pass\n',
        expect: {
          'production.host': 'real-host',
          'production.port': 6000,
          'production.database': 'real_db',
          'production.password': 'p',
        },
        sources: { 'production.database': 'DATABASE_URL (environment)' },
      },
      {
        name: "a real TEST_DATABASE_URL's database beats .env's TEST_DB_NAME; parts it lacks still come from .env",
        env: { TEST_DATABASE_URL: 'postgres://real_user@real-host/real_db' },
        dotenv: 'TEST_DB_NAME=dotenv_db\nTEST_DB_USER=dotenv_user\nTEST_DB_PASS=dotenv-pass\n',
        expect: {
          'test.user': 'real_user',
          'test.database': 'real_db',
          'test.password': 'dotenv-pass',
        },
        sources: { 'test.password': 'TEST_DB_PASS (.env)', 'test.user': 'TEST_DATABASE_URL (environment)' },
      },
      {
        name: "real DB_HOST beats .env's DATABASE_URL host, the URL's other parts still count",
        env: { DB_HOST: 'real-host' },
        dotenv: 'DATABASE_URL=postgres://u:p@dotenv-host:6100/dotenv_db\n',
        expect: {
          'production.host': 'real-host',
          'production.port': 6100,
          'production.database': 'dotenv_db',
        },
      },
      {
        name: 'the config file URL beats the real environment fields',
        env: { DB_HOST: 'env-host', DB_NAME: 'env_db', DB_USER: 'env_user' },
        file: { production: { url: 'postgres://file_user@file-host/file_db' } },
        expect: {
          'production.host': 'file-host',
          'production.database': 'file_db',
          'production.user': 'file_user',
        },
        sources: { 'production.host': 'pgtwin.config.json' },
      },
      {
        name: 'explicit options beat the config file, field by field, URL or not',
        file: { test: { url: 'postgres://file_user@file-host:6200/file_db', ssl: 'require' } },
        options: { test: { url: 'postgres://opt-host/opt_db' } },
        expect: {
          'test.host': 'opt-host',
          'test.database': 'opt_db',
          'test.port': 6200,
          'test.user': 'file_user',
          'test.ssl.mode': 'require',
        },
        sources: { 'test.host': 'options', 'test.port': 'pgtwin.config.json' },
      },
      {
        name: "a real URL's sslmode beats PGSSLMODE and .env's URL",
        env: { DATABASE_URL: 'postgres://h/db?sslmode=verify-ca', PGSSLMODE: 'require' },
        dotenv: 'DATABASE_URL=postgres://h/db?sslmode=disable\n',
        expect: {
          'production.ssl.mode': 'verify-ca',
          'test.ssl.mode': 'require',
          'admin.ssl.mode': 'require',
        },
        sources: { 'test.ssl.mode': 'PGSSLMODE (environment)' },
      },
    ];
    it.each(cases)('$name', async (c) => {
      const rootDir = project({
        ...(c.dotenv ? { '.env': c.dotenv } : {}),
        ...(c.file ? { 'pgtwin.config.json': JSON.stringify(c.file) } : {}),
      });
      const config = await resolveConfig({ rootDir, env: c.env ?? {}, ...c.options });
      for (const [key, value] of Object.entries(c.expect)) {
        let actual: unknown = config;
        for (const part of key.split('.')) actual = (actual as Record<string, unknown>)[part];
        expect(actual, key).toBe(value);
      }
      for (const [key, value] of Object.entries(c.sources ?? {}))
        expect(config.sources[key], key).toBe(value);
    });
  });

  it('refuses a database or user name over 63 bytes, naming the variable, the byte count and the fix', async () => {
    const production = 'p'.repeat(63);
    const error = await configError(
      resolveConfig({ rootDir: project({ '.env': `TEST_DB_NAME=${production}_test\n` }), env: {} }),
    );
    expect(error.key).toBe('TEST_DB_NAME');
    expect(error.message).toContain('TEST_DB_NAME (from .env) is 68 bytes long');
    expect(error.message).toContain('at most 63 bytes');
    // 32 two-byte characters: 32 characters, 64 bytes.
    const wide = await configError(
      resolveConfig({ rootDir: project({}), env: {}, test: { user: 'é'.repeat(32) } }),
    );
    expect(wide.key).toBe('test.user');
    expect(wide.message).toContain('64 bytes');
    const url = await configError(
      resolveConfig({ rootDir: project({}), env: { DATABASE_URL: `postgres://h/${'d'.repeat(64)}` } }),
    );
    expect(url.key).toBe('DATABASE_URL');
    const fits = await resolveConfig({ rootDir: project({}), env: { TEST_DB_NAME: 'é'.repeat(31) + 'x' } });
    expect(fits.test.database).toHaveLength(32);
  });

  it('reads TLS settings from URLs, PGSSLMODE and the ssl option, and rejects unknown ones', async () => {
    const rootDir = project({
      'ca.pem': 'not checked until a connection',
      'client.pem': '',
      'client.key': '',
    });
    const config = await resolveConfig({
      rootDir,
      env: { DATABASE_URL: 'postgres://h/db?sslmode=verify-full&sslrootcert=ca.pem&application_name=x' },
      test: { ssl: { rootCert: 'ca.pem', cert: 'client.pem', key: 'client.key' } },
      admin: { ssl: false },
    });
    expect(config.production.ssl).toEqual({ mode: 'verify-full', rootCert: path.join(rootDir, 'ca.pem') });
    expect(config.test.ssl.mode).toBe('verify-full');
    expect(config.test.ssl.key).toBe(path.join(rootDir, 'client.key'));
    expect(config.admin.ssl).toEqual({ mode: 'disable' });
    expect(config.production.url()).toContain('sslmode=verify-full');
    expect(config.sources['production.ssl.rootCert']).toBe('DATABASE_URL (environment)');

    const bad = await configError(
      resolveConfig({ rootDir, env: { DATABASE_URL: 'postgres://h/db?sslmode=maybe' } }),
    );
    expect(bad.key).toBe("DATABASE_URL's sslmode");
    expect(bad.message).toContain('must be one of disable, allow, prefer, require, verify-ca, verify-full');
    const env = await configError(resolveConfig({ rootDir, env: { PGSSLMODE: 'on' } }));
    expect(env.key).toBe('PGSSLMODE');
    const option = await configError(
      resolveConfig({ rootDir, env: {}, production: { ssl: 'strict' as never } }),
    );
    expect(option.key).toBe('production.ssl');
    const key = await configError(
      resolveConfig({ rootDir, env: {}, production: { ssl: { rootcert: 'x' } as never } }),
    );
    expect(key.message).toContain(
      'Unknown key "production.ssl.rootcert" in options (did you mean "rootCert"?)',
    );
    const missing = await configError(
      resolveConfig({ rootDir, env: {}, test: { ssl: { rootCert: 'nope.pem' } } }),
    );
    expect(missing.key).toBe('test.ssl');
    expect(missing.message).toContain('does not exist');
  });
});
