import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import type { ClientConfig } from 'pg';
import { ConfigError } from '../errors.js';
import { MASK } from './mask-secrets.js';

const passwords = new WeakMap<DatabaseTarget, string>();
// Kept off the enumerable fields, like the password, so comparing and printing targets is unchanged.
const settingsOf = new WeakMap<DatabaseTarget, Readonly<TargetSettings>>();

/** libpq's `sslmode` values pgtwin understands (`no-verify` is node-postgres's spelling of `require`). */
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full' | 'no-verify';

export const SSL_MODES: readonly SslMode[] = Object.freeze([
  'disable',
  'allow',
  'prefer',
  'require',
  'verify-ca',
  'verify-full',
  'no-verify',
]);

/** TLS settings of one target, resolved: the mode and absolute paths of the certificate files. */
export interface TlsSettings {
  mode: SslMode;
  /** CA certificate(s) the server's certificate must chain to (`sslrootcert`). */
  rootCert?: string;
  /** Client certificate (`sslcert`). */
  cert?: string;
  /** Client private key (`sslkey`). */
  key?: string;
}

/**
 * Which setting gave each connection field, by the name a user changes (`TEST_DB_PORT`, `DB_PASS`,
 * `TEST_DB_ADMIN_URL`, `test.port in pgtwin.config.ts`), so a failed connection names the one to fix.
 */
export interface TargetSettings {
  host?: string;
  port?: string;
  database?: string;
  user?: string;
  password?: string;
}

/** The fields a {@link DatabaseTarget} is built from. */
export interface TargetInit {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** TLS; unencrypted when absent. */
  ssl?: TlsSettings;
  /** PostgreSQL startup options (libpq's `options`, e.g. `-c statement_timeout=5000`). */
  options?: string;
  /** Where each field was configured; absent for a server pgtwin started. */
  settings?: TargetSettings;
}

/**
 * Where one database lives and how to log in. The password is kept out of every enumerable field,
 * `toString`, `toJSON` and `util.inspect`, so printing a target (or a config holding it) never shows it.
 */
export class DatabaseTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** TLS settings; `mode: 'disable'` unless configured. */
  readonly ssl: Readonly<TlsSettings>;
  /** PostgreSQL startup options from the configuration, if any. */
  readonly options: string | undefined;

  constructor(fields: TargetInit) {
    this.host = fields.host;
    this.port = fields.port;
    this.database = fields.database;
    this.user = fields.user;
    this.ssl = Object.freeze({ ...(fields.ssl ?? { mode: 'disable' }) });
    this.options = fields.options || undefined;
    settingsOf.set(this, Object.freeze({ ...fields.settings }));
    passwords.set(this, fields.password);
    Object.freeze(this);
  }

  /** Which setting gave each field (see {@link TargetSettings}); empty for a server pgtwin started. */
  get settings(): Readonly<TargetSettings> {
    return settingsOf.get(this) ?? {};
  }

  /** The password; read it only to connect. */
  get password(): string {
    return passwords.get(this) ?? '';
  }

  /** Whether sessions to this target ask for TLS. */
  get encrypted(): boolean {
    return this.ssl.mode !== 'disable' && this.ssl.mode !== 'allow';
  }

  /** The same server and user with another database. */
  withDatabase(database: string): DatabaseTarget {
    const { database: _changed, ...settings } = this.settings;
    return new DatabaseTarget({ ...this.fields(), database, settings });
  }

  /** The same target with other TLS settings. */
  withSsl(ssl: TlsSettings): DatabaseTarget {
    return new DatabaseTarget({ ...this.fields(), ssl, settings: this.settings });
  }

  /**
   * Settings for `new pg.Client(...)` / `new pg.Pool(...)`. `ssl` is always set (to `false` when disabled),
   * so node-postgres never reads `PGSSLMODE` itself; `options` from `extra` come after the target's own.
   */
  clientConfig(extra: ClientConfig = {}): ClientConfig {
    const options = [this.options, extra.options].filter(Boolean).join(' ') || undefined;
    const { connectionString: _ignored, ...rest } = extra;
    return {
      ...this.fields(),
      application_name: 'pgtwin',
      ...rest,
      ssl: rest.ssl ?? this.nodeSsl(),
      ...(options ? { options } : {}),
    };
  }

  /** A connection URL; includes the password only when asked, for handing to the application. */
  url(options: { withPassword?: boolean } = {}): string {
    const url = new URL('postgres://placeholder');
    url.hostname = this.host.includes(':') ? `[${this.host}]` : this.host;
    url.port = String(this.port);
    url.pathname = `/${encodeURIComponent(this.database)}`;
    url.username = encodeURIComponent(this.user);
    if (this.password !== '') url.password = options.withPassword ? encodeURIComponent(this.password) : MASK;
    if (this.ssl.mode !== 'disable') {
      url.searchParams.set('sslmode', this.ssl.mode);
      if (this.ssl.rootCert) url.searchParams.set('sslrootcert', this.ssl.rootCert);
      if (this.ssl.cert) url.searchParams.set('sslcert', this.ssl.cert);
      if (this.ssl.key) url.searchParams.set('sslkey', this.ssl.key);
    }
    if (this.options) url.searchParams.set('options', this.options);
    return url.toString();
  }

  /** `user@host:port/database`, for messages. */
  describe(): string {
    return `${this.user}@${this.host}:${this.port}/${this.database}`;
  }

  toString(): string {
    return this.url();
  }

  toJSON(): Record<string, unknown> {
    return {
      host: this.host,
      port: this.port,
      database: this.database,
      user: this.user,
      password: this.password ? MASK : '',
      ssl: { ...this.ssl },
      ...(this.options ? { options: this.options } : {}),
    };
  }

  [inspect.custom](): string {
    return `DatabaseTarget(${this.url()})`;
  }

  /** The target's fields, password and TLS included, as plain data (for handing to test workers). */
  fields(): TargetInit {
    return {
      host: this.host,
      port: this.port,
      database: this.database,
      user: this.user,
      password: this.password,
      ssl: { ...this.ssl },
      ...(this.options ? { options: this.options } : {}),
    };
  }

  /**
   * node-postgres's `ssl` option. node-postgres cannot fall back between plain and TLS sessions on its own:
   * `allow` is taken as `disable`; `prefer` asks for TLS here and {@link connect} retries without it when
   * the server has no TLS.
   */
  private nodeSsl(): ClientConfig['ssl'] {
    const { mode } = this.ssl;
    if (mode === 'disable' || mode === 'allow') return false;
    const files = {
      ...(this.ssl.rootCert ? { ca: readTlsFile(this.ssl.rootCert, 'sslrootcert') } : {}),
      ...(this.ssl.cert ? { cert: readTlsFile(this.ssl.cert, 'sslcert') } : {}),
      ...(this.ssl.key ? { key: readTlsFile(this.ssl.key, 'sslkey') } : {}),
    };
    // libpq: `require` with a root certificate verifies the chain, as verify-ca does.
    const verifyChain = mode === 'verify-ca' || mode === 'verify-full' || (mode === 'require' && !!files.ca);
    if (!verifyChain) return { ...files, rejectUnauthorized: false };
    if (mode === 'verify-full') return { ...files, rejectUnauthorized: true };
    return { ...files, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  }
}

function readTlsFile(file: string, parameter: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      parameter,
      `Cannot read the ${parameter} file ${file}: ${(error as Error).message}. Fix the path in the ssl settings (or the URL's ${parameter}).`,
      { cause: error },
    );
  }
}
