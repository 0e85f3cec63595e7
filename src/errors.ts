/**
 * Errors pgtwin raises for problems a user can fix. Each carries a payload naming what was wrong and a
 * message that says what to do; runners and the CLI print the message alone (no stack) unless debugging.
 */
export class PgtwinError extends Error {
  /** Stable machine-readable code, e.g. `PGTWIN_CONFIG`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A configuration value (option, config-file key or environment variable) is missing or invalid. */
export class ConfigError extends PgtwinError {
  /** The option path or variable name, e.g. `TEST_DB_PORT` or `mirror.full`. */
  readonly key: string;

  constructor(key: string, message: string, options?: { cause?: unknown }) {
    super('PGTWIN_CONFIG', message, options);
    this.key = key;
  }
}

/** A destructive operation was refused because its target is, or may be, the production database. */
export class ProductionGuardError extends PgtwinError {
  /** The database the operation targeted. */
  readonly database: string;
  /**
   * Why it was refused: the database reached is production; it carries no pgtwin marker; the operation was
   * asked of a production connection; a production session turned out writable
   * (`default_transaction_read_only` off); production's identity is unknown and the database is unmarked;
   * the connection landed in another database than the one asked for (a pooler alias); the name is longer
   * than PostgreSQL keeps; the database does not exist.
   */
  readonly reason:
    | 'is-production'
    | 'unmarked'
    | 'production-connection'
    | 'production-writable'
    | 'production-unknown'
    | 'unexpected-database'
    | 'name-too-long'
    | 'missing';

  constructor(database: string, reason: ProductionGuardError['reason'], message: string) {
    super('PGTWIN_GUARD', message);
    this.database = database;
    this.reason = reason;
  }
}

/** A server could not be reached or refused the connection or a required privilege. */
export class ConnectionError extends PgtwinError {
  /** Where pgtwin tried to connect (never includes the password). */
  readonly target: { host: string; port: number; database: string; user: string };

  constructor(target: ConnectionError['target'], message: string, options?: { cause?: unknown }) {
    super('PGTWIN_CONNECTION', message, options);
    this.target = target;
  }
}

/** Provisioning the test database or role failed, for example for lack of a privilege. */
export class ProvisionError extends PgtwinError {
  /** The privilege or step that failed, e.g. `CREATEDB`. */
  readonly step: string;

  constructor(step: string, message: string, options?: { cause?: unknown }) {
    super('PGTWIN_PROVISION', message, options);
    this.step = step;
  }
}

/** The mirroring policy forbids copying production data into a table. */
export class MirrorPolicyError extends PgtwinError {
  /** The refused table, `schema.table`. */
  readonly table: string;
  /** Not listed in `mirror.full`, listed in `mirror.structureOnly`, or in a schema matching `projectSchemas`. */
  readonly reason: 'unmirrored' | 'structure-only' | 'project-schema';

  constructor(table: string, reason: MirrorPolicyError['reason'], message: string) {
    super('PGTWIN_MIRROR_POLICY', message);
    this.table = table;
    this.reason = reason;
  }
}

/** Mirroring a table failed: it does not exist, its copy broke off, or the copied rows break a foreign key. */
export class MirrorError extends PgtwinError {
  /** The table concerned, `schema.table`. */
  readonly table: string;

  constructor(table: string, message: string, options?: { cause?: unknown }) {
    super('PGTWIN_MIRROR', message, options);
    this.table = table;
  }
}

/**
 * A dump directory is missing a file, is corrupted or truncated, was written by an incompatible version, or
 * its manifest does not match the dump format (a field of the wrong type, a data file outside the directory,
 * a sequence value the sequence cannot take).
 */
export class DumpError extends PgtwinError {
  /** The offending file, relative to the dump directory (e.g. `manifest.json`). */
  readonly file: string;
  /** The offending field of `manifest.json`, e.g. `tables[2].file`, when a field is to blame. */
  readonly field: string | undefined;

  constructor(file: string, message: string, options?: { cause?: unknown; field?: string }) {
    super('PGTWIN_DUMP', message, options);
    this.file = file;
    this.field = options?.field;
  }
}

/**
 * A seed file is malformed or cannot be loaded: bad JSON, an unknown table or column, an unresolved or cyclic
 * `$ref`, or a row the database rejected. Nothing of the seed is loaded when this is thrown.
 */
export class SeedError extends PgtwinError {
  /** The seed file, as given. */
  readonly file: string;
  /** JSON path of the offending value, e.g. `$["public.projects"][1].nmae`. */
  readonly path: string;
  /** 1-based line of the offending value in `file`, when it could be located. */
  readonly line: number | undefined;
  /** 1-based column of the offending value in `file`, when it could be located. */
  readonly column: number | undefined;
  /** The database constraint that rejected the row, for constraint violations. */
  readonly constraint: string | undefined;

  constructor(
    location: { file: string; path: string; line?: number; column?: number; constraint?: string },
    message: string,
    options?: { cause?: unknown },
  ) {
    super('PGTWIN_SEED', message, options);
    this.file = location.file;
    this.path = location.path;
    this.line = location.line;
    this.column = location.column;
    this.constraint = location.constraint;
  }
}

/**
 * A factory could not build or insert a row: a required foreign key column was not given, or a column's type
 * has no automatic value. In a seed file this becomes a {@link SeedError} pointing at the row.
 */
export class FactoryError extends PgtwinError {
  /** The table the factory builds rows for, `schema.table`. */
  readonly table: string;
  /** The column that needs a value. */
  readonly column: string;

  constructor(table: string, column: string, message: string) {
    super('PGTWIN_FACTORY', message);
    this.table = table;
    this.column = column;
  }
}

/** Per-test isolation could not keep a test faithful to how the application behaves without it. */
export class IsolationError extends PgtwinError {
  /** What went wrong, e.g. `pool-exhausted` or `interleaved-rollback`. */
  readonly reason:
    | 'pool-exhausted'
    | 'connection-busy'
    | 'interleaved-rollback'
    | 'unsupported-statement'
    | 'test-ended'
    | 'not-enabled'
    | 'transaction-left-open'
    | 'unsupported-pg'
    | 'too-many-connections'
    | 'transaction-wait'
    | 'ambiguous-test'
    | 'connection-lost';
  /** The test the error happened in, when one was running. */
  readonly test: string | undefined;

  constructor(
    reason: IsolationError['reason'],
    message: string,
    options?: { cause?: unknown; test?: string },
  ) {
    super('PGTWIN_ISOLATION', message, options);
    this.reason = reason;
    this.test = options?.test;
  }
}

/** The source database holds objects the structure cloner cannot recreate, so nothing was cloned. */
export class UnsupportedObjectError extends PgtwinError {
  /** Each unsupported object: its schema (`null` for database-wide objects), name and kind. */
  readonly objects: readonly { schema: string | null; name: string; kind: string }[];

  constructor(objects: UnsupportedObjectError['objects']) {
    const list = objects.map((o) => `  ${o.kind} ${o.schema === null ? o.name : `${o.schema}.${o.name}`}`);
    super(
      'PGTWIN_UNSUPPORTED_OBJECT',
      `The source database has ${objects.length} object(s) pgtwin cannot clone, so nothing was written:\n` +
        `${list.join('\n')}\n` +
        'Remove them from the source, or narrow the schema selection so it excludes them.',
    );
    this.objects = objects;
  }
}

/** A statement failed while applying a structure to the target; the whole apply was rolled back. */
export class StructureApplyError extends PgtwinError {
  /** Key of the object being created, e.g. `table public.projects`. */
  readonly object: string;
  /** The statement that failed. */
  readonly statement: string;

  constructor(object: string, statement: string, message: string, options?: { cause?: unknown }) {
    super('PGTWIN_STRUCTURE_APPLY', message, options);
    this.object = object;
    this.statement = statement;
  }
}

/** A SQL script failed; the scripts run in one transaction, so none of them took effect. */
export class SqlScriptError extends PgtwinError {
  /** Path of the script that failed. */
  readonly file: string;

  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('PGTWIN_SQL_SCRIPT', message, options);
    this.file = file;
  }
}

/** A server provider could not start or reach the PostgreSQL server the tests run on. */
export class ProviderError extends PgtwinError {
  /** The provider that failed. */
  readonly provider: 'server' | 'embedded' | 'container';
  /** What went wrong, e.g. `binaries-missing`, `permission` or `no-engine`. */
  readonly reason:
    | 'unsupported-platform'
    | 'binaries-missing'
    | 'binaries-unwritable'
    | 'system-user'
    | 'permission'
    | 'port-in-use'
    | 'initdb'
    | 'start'
    | 'stop'
    | 'module-missing'
    | 'no-engine';

  constructor(
    provider: ProviderError['provider'],
    reason: ProviderError['reason'],
    message: string,
    options?: { cause?: unknown },
  ) {
    super('PGTWIN_PROVIDER', message, options);
    this.provider = provider;
    this.reason = reason;
  }
}

/**
 * A phase of the test run's global setup failed; the phases after it did not run. The message names the
 * phase and carries the cause's message, which says what to change.
 */
export class SetupError extends PgtwinError {
  /** The phase that failed, e.g. `provision`, `clone`, `seed`. */
  readonly phase: string;

  constructor(phase: string, message: string, options?: { cause?: unknown }) {
    super('PGTWIN_SETUP', message, options);
    this.phase = phase;
  }
}
