import pg from 'pg';
import type { DatabaseTarget } from '../../src/config/database-target.js';
import type { ResolvedConfig } from '../../src/config/index.js';
import { connect } from '../../src/connection/connect.js';
import { syncTables } from '../../src/mirror/index.js';
import { pgtwinVersion } from '../../src/mirror/pgtwin-version.js';
import { readProductionFingerprint } from '../../src/pipeline/read-production-fingerprint.js';
import type { FingerprintSources } from '../../src/provision/twin-fingerprint.js';
import { loadSeedData } from '../../src/seed/index.js';
import { cloneStructure } from '../../src/structure/index.js';
import { selectionFromConfig } from '../../src/structure/schema-selection.js';

// The global setup's steps for a production source, free of Vitest so the bench can use them too.

/** What the pipeline reads from the servers for the fingerprint. */
export async function readSources(config: ResolvedConfig): Promise<FingerprintSources> {
  const production = await connect(config.production, 'production');
  try {
    const { rows } = await production.query<{ v: string }>(
      `SELECT current_setting('server_version_num') AS v`,
    );
    const { structure, data } = await readProductionFingerprint(config, production);
    return {
      structure,
      data,
      serverVersion: rows[0]!.v,
      pgtwinVersion: pgtwinVersion(),
    };
  } finally {
    await production.end();
  }
}

/** The twin build the pipeline runs: structure from production, mirrored tables, seeds. */
export function twinBuilder(config: ResolvedConfig, calls: { count: number } = { count: 0 }) {
  return async (target: DatabaseTarget): Promise<void> => {
    calls.count++;
    const production = await connect(config.production, 'production');
    const test = new pg.Client(target.clientConfig());
    await test.connect();
    try {
      await cloneStructure(production, test, { selection: selectionFromConfig(config) });
      await syncTables(production, test, { policy: config });
      await loadSeedData(test, config.seeds, {
        rootDir: config.rootDir,
        projectSchemas: config.projectSchemas,
      });
    } finally {
      await test.end();
      await production.end();
    }
  };
}
