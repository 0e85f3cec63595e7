import { inspect } from 'node:util';
import type { ClientConfig } from 'pg';
import { MASK } from './mask-secrets.js';

const passwords = new WeakMap<DatabaseTarget, string>();

/**
 * Where one database lives and how to log in. The password is kept out of every enumerable field,
 * `toString`, `toJSON` and `util.inspect`, so printing a target (or a config holding it) never shows it.
 */
export class DatabaseTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;

  constructor(fields: { host: string; port: number; database: string; user: string; password: string }) {
    this.host = fields.host;
    this.port = fields.port;
    this.database = fields.database;
    this.user = fields.user;
    passwords.set(this, fields.password);
    Object.freeze(this);
  }

  /** The password; read it only to connect. */
  get password(): string {
    return passwords.get(this) ?? '';
  }

  /** The same server and user with another database. */
  withDatabase(database: string): DatabaseTarget {
    return new DatabaseTarget({ ...this.fields(), database });
  }

  /** Settings for `new pg.Client(...)` / `new pg.Pool(...)`. */
  clientConfig(extra: ClientConfig = {}): ClientConfig {
    return { ...this.fields(), application_name: 'pgtwin', ...extra };
  }

  /** A connection URL; includes the password only when asked, for handing to the application. */
  url(options: { withPassword?: boolean } = {}): string {
    const url = new URL('postgres://placeholder');
    url.hostname = this.host.includes(':') ? `[${this.host}]` : this.host;
    url.port = String(this.port);
    url.pathname = `/${encodeURIComponent(this.database)}`;
    url.username = encodeURIComponent(this.user);
    if (this.password !== '') url.password = options.withPassword ? encodeURIComponent(this.password) : MASK;
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
    };
  }

  [inspect.custom](): string {
    return `DatabaseTarget(${this.url()})`;
  }

  private fields() {
    return {
      host: this.host,
      port: this.port,
      database: this.database,
      user: this.user,
      password: this.password,
    };
  }
}
