import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { configFrom, type ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import type { TestMode } from '../connection/db-connector.js';
import { ConfigError } from '../errors.js';
import { guardDestructive, refuseProductionConnection } from '../guard/production-guard.js';
import { TwinDatabases } from '../provision/twin-databases.js';
import { applySqlScripts, listSqlScripts } from './apply-sql-scripts.js';
import { cloneStructure } from './clone-structure.js';
import { resolveSchemas, selectionFromConfig } from './schema-selection.js';

/** What {@link SchemaSetup.ensurePublicSchema} did. */
export interface SchemaSetupResult {
  /** `scripts`: built from `schema.scripts`; `production`: cloned from production; `unchanged`: already up to date. */
  source: 'scripts' | 'production' | 'unchanged';
  /** The script files applied, in order (empty unless `source` is `scripts`). */
  files: string[];
}

/**
 * Initialises the test database's structure from scratch: from the application's own schema scripts
 * (`schema.scripts`, a directory of `.sql` files applied in name order) when configured, else by cloning
 * production's structure. Idempotent: the same scripts are not applied twice.
 *
 * @example
 * ```ts
 * await new SchemaSetup({ testMode: 'e2e' }).ensurePublicSchema();
 * ```
 */
export class SchemaSetup {
  readonly testMode: TestMode | undefined;
  readonly #config: Promise<ResolvedConfig>;

  constructor(options: { testMode?: TestMode; config?: ResolvedConfig | ResolveConfigOptions } = {}) {
    if (options.testMode !== undefined && options.testMode !== 'e2e') {
      throw new ConfigError('testMode', `testMode must be 'e2e', got ${JSON.stringify(options.testMode)}.`);
    }
    this.testMode = options.testMode;
    this.#config = configFrom(options.config);
  }

  /** Builds the public and project schemas of the test database, unless they are already built from the same scripts. */
  async ensurePublicSchema(): Promise<SchemaSetupResult> {
    const config = await this.#config;
    if (this.testMode !== 'e2e') refuseProductionConnection('set up the schema', config.production.database);
    const selection = selectionFromConfig(config);

    if (config.schema.scripts === undefined) {
      const [production, test] = [
        await connect(config.production, 'production'),
        await connect(config.test, 'test'),
      ];
      try {
        await guardDestructive({ config, client: test, operation: 'set up the schema of' });
        await cloneStructure(production, test, { selection, replace: true });
        return { source: 'production', files: [] };
      } finally {
        await Promise.all([production.end(), test.end()]);
      }
    }

    const scripts = config.schema.scripts;
    const files = await listSqlScripts(scripts).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError(
        'schema.scripts',
        `schema.scripts points at ${scripts}, which cannot be read (${error.code ?? error.message}). Fix the path in your pgtwin config.`,
      );
    });
    if (files.length === 0) {
      throw new ConfigError(
        'schema.scripts',
        `schema.scripts (${scripts}) holds no .sql files. Add your schema scripts or remove the option.`,
      );
    }
    const hash = createHash('sha256');
    for (const file of files)
      hash
        .update(path.basename(file))
        .update('\0')
        .update(await readFile(file))
        .update('\0');
    const digest = hash.digest('hex');

    const test = await connect(config.test, 'test');
    try {
      await guardDestructive({ config, client: test, operation: 'set up the schema of' });
      // The test role owns its database, so it reads and stamps the marker itself.
      const databases = await TwinDatabases.open(config, test);
      const marker = await databases.marker(config.test.database);
      if (marker?.scripts === digest) return { source: 'unchanged', files: [] };
      const replaceSchemas = await resolveSchemas(test, selection);
      const applied = await applySqlScripts(test, scripts, {
        replaceSchemas: [...new Set(['public', ...replaceSchemas])],
      });
      if (marker) await databases.stamp(config.test.database, { ...marker, scripts: digest });
      return { source: 'scripts', files: applied };
    } finally {
      await test.end();
    }
  }
}
