import pg from 'pg';
import type { DatabaseTarget } from '../config/database-target.js';
import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { configFrom, type ResolvedConfig } from '../config/resolve-config.js';
import { ConfigError, ProductionGuardError } from '../errors.js';
import {
  assertReadOnly,
  connectionConfig,
  connectionError,
  settlePreferredTls,
  type TargetRole,
} from './connect.js';

/** `'e2e'` selects the test database; leaving it out selects production, read-only. */
export type TestMode = 'e2e';

/** Which configured database a {@link DBConnector} reaches. */
export type ConnectorTarget = 'production' | 'test';

/** The database a connector reaches when neither `target` nor `testMode` says: production, read-only. */
export const DEFAULT_CONNECTOR_TARGET: ConnectorTarget = 'production';

export interface DBConnectorOptions {
  /**
   * Which database to connect to: `'production'` (always read-only) or `'test'`. Say it explicitly: the
   * default reads production.
   * @default DEFAULT_CONNECTOR_TARGET ('production')
   */
  target?: ConnectorTarget;
  /**
   * The older spelling of `target`: `'e2e'` is `target: 'test'`; omitted means production (read-only).
   * @default undefined (production)
   */
  testMode?: TestMode;
  /** A resolved configuration, or options for {@link resolveConfig}. @default resolveConfig() */
  config?: ResolvedConfig | ResolveConfigOptions;
  /**
   * Extra pool settings (`max`, `idleTimeoutMillis`, `options`, ...). `options` are added to the configured ones;
   * on production they can never switch off `default_transaction_read_only`, and each new client is checked.
   */
  pool?: Omit<pg.PoolConfig, 'host' | 'port' | 'database' | 'user' | 'password' | 'connectionString'>;
}

/**
 * Pooled connections to production or the test database, chosen by `target` (or the older `testMode`);
 * without either it reaches production. Production connections are read-only at the session level, so
 * nothing sent through them can write.
 *
 * @example
 * ```ts
 * await using test = new DBConnector({ target: 'test' }); // or { testMode: 'e2e' }
 * const { rows } = await test.query('SELECT count(*) FROM public.prompts');
 * ```
 */
export class DBConnector {
  readonly testMode: TestMode | undefined;
  readonly #options: DBConnectorOptions;
  #config: Promise<ResolvedConfig> | undefined;
  #pool: Promise<pg.Pool> | undefined;

  constructor(options: DBConnectorOptions = {}) {
    if (options.testMode !== undefined && options.testMode !== 'e2e') {
      throw new ConfigError(
        'testMode',
        `testMode must be 'e2e' (the test database) or left out (production, read-only), got ${JSON.stringify(options.testMode)}.`,
      );
    }
    if (options.target !== undefined && options.target !== 'production' && options.target !== 'test') {
      throw new ConfigError(
        'target',
        `target must be 'production' (read-only) or 'test', got ${JSON.stringify(options.target)}.`,
      );
    }
    if (options.target === 'production' && options.testMode === 'e2e') {
      throw new ConfigError(
        'target',
        "target: 'production' contradicts testMode: 'e2e' (the test database). Give target alone.",
      );
    }
    this.which = options.target ?? (options.testMode === 'e2e' ? 'test' : DEFAULT_CONNECTOR_TARGET);
    this.testMode = this.which === 'test' ? 'e2e' : undefined;
    this.#options = options;
  }

  /** The database this connector reaches: `'production'` (read-only) or `'test'`. */
  readonly which: ConnectorTarget;

  /** Whether this connector reaches production (read-only). */
  get isProduction(): boolean {
    return this.which === 'production';
  }

  /** The role of this connector's database for messages and the guard. */
  get role(): TargetRole {
    return this.isProduction ? 'production' : 'test';
  }

  /** The resolved configuration in use. */
  config(): Promise<ResolvedConfig> {
    this.#config ??= configFrom(this.#options.config);
    return this.#config;
  }

  /** The database this connector reaches. */
  async target(): Promise<DatabaseTarget> {
    const config = await this.config();
    return this.isProduction ? config.production : config.test;
  }

  /** The pool, created on first use. */
  pool(): Promise<pg.Pool> {
    this.#pool ??= this.target().then(async (configured) => {
      const target = await settlePreferredTls(configured, this.role);
      const { onConnect, ...settings } = this.#options.pool ?? {};
      const production = this.isProduction;
      // The pool's settings go through connectionConfig, so their `options` join the target's and production's
      // read-only option still comes last; every new production client is checked before anyone gets it.
      const pool = new pg.Pool({
        ...connectionConfig(target, this.role, settings),
        onConnect: async (client: pg.ClientBase) => {
          if (production) await assertReadOnly(client, target);
          await onConnect?.(client);
        },
      });
      // An idle client's connection dropping must not crash the process; the next query reconnects.
      pool.on('error', () => undefined);
      return pool;
    });
    return this.#pool;
  }

  /** Checks out a client; release it with `client.release()`. */
  async connect(): Promise<pg.PoolClient> {
    const pool = await this.pool();
    try {
      return await pool.connect();
    } catch (error) {
      if (error instanceof ProductionGuardError) throw error;
      throw connectionError(error, await this.target(), this.role);
    }
  }

  /** Runs one statement on a pooled client. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const client = await this.connect();
    try {
      const result = await client.query<R>(sql, params);
      client.release();
      return result;
    } catch (error) {
      // A failed multi-statement string can leave the session inside an aborted transaction: discard it.
      client.release(error as Error);
      throw error;
    }
  }

  /** Closes the pool. */
  async end(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool) await (await pool).end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.end();
  }
}
