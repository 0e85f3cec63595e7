/**
 * Every environment variable pgtwin reads or sets, by what it means. The resolver reads these names, the
 * worker handoff sets them, and messages name them through this object, so a name is spelled in one place.
 */
export const ENV_NAMES = Object.freeze({
  /** The production database, only ever read. */
  production: Object.freeze({
    url: 'DATABASE_URL',
    host: 'DB_HOST',
    port: 'DB_PORT',
    database: 'DB_NAME',
    user: 'DB_USER',
    password: 'DB_PASS',
  }),
  /** The test database pgtwin owns; also set in each test worker, pointing at that worker's database. */
  test: Object.freeze({
    url: 'TEST_DATABASE_URL',
    host: 'TEST_DB_HOST',
    port: 'TEST_DB_PORT',
    database: 'TEST_DB_NAME',
    user: 'TEST_DB_USER',
    password: 'TEST_DB_PASS',
  }),
  /** The connection that creates the test database and role. */
  admin: Object.freeze({ url: 'TEST_DB_ADMIN_URL' }),
  /** libpq's TLS mode, below every target's own `sslmode`. */
  sslMode: 'PGSSLMODE',
  /** `1`: destructive operations may touch a database without pgtwin's marker. */
  allowUnmarked: 'PGTWIN_ALLOW_UNMARKED',
  /** Which server the run uses: `auto`, `server`, `embedded` or `container`. */
  provider: 'PGTWIN_PROVIDER',
  /** The embedded server's data directory. */
  embeddedDataDir: 'PGTWIN_EMBEDDED_DATA_DIR',
  /** Where, as root, the embedded server's programs and clusters are kept. */
  embeddedCacheDir: 'PGTWIN_EMBEDDED_CACHE_DIR',
  /** `1`: debug lines, and errors with their stacks. */
  debug: 'PGTWIN_DEBUG',
  /** `1`: build the template again although its fingerprint is unchanged. */
  rebuild: 'PGTWIN_REBUILD',
  /** Set by pgtwin: the global setup's handoff to Jest workers, as JSON. */
  handoff: 'PGTWIN_HANDOFF',
} as const);
