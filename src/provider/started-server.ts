import type { DatabaseTarget } from '../config/database-target.js';

/** The provider a run actually used; `'auto'` resolves to one of these. */
export type ServerProviderName = 'server' | 'embedded' | 'container';

/**
 * The PostgreSQL server a test run uses, as returned by {@link startServer}. Owns the server when pgtwin
 * started it: {@link StartedServer.stop} shuts it down (an embedded server in persistent mode stays up).
 */
export interface StartedServer extends AsyncDisposable {
  /** The provider used. */
  readonly provider: ServerProviderName;
  /** Why this provider was used, e.g. `nothing answers at localhost:5432 (TEST_DB_HOST/TEST_DB_PORT)`. */
  readonly reason: string;
  /** A superuser (or the configured admin) connection to the server's maintenance database. */
  readonly admin: DatabaseTarget;
  /** Where the test database lives on this server: the configured name, user and password, this host and port. */
  readonly test: DatabaseTarget;
  /**
   * The configured production database when it is on this very server (same host and port, provider
   * `'server'` only), so the caller knows the server it provisions on also holds production. A hint: the
   * production guard still decides by server identity.
   */
  readonly production: DatabaseTarget | undefined;
  /** Stops the server if pgtwin started it and it is not persistent; otherwise does nothing. Idempotent. */
  stop(): Promise<void>;
}
