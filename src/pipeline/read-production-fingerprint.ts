import type pg from 'pg';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { tableChecksums, type TableChecksum } from '../mirror/table-checksum.js';
import { selectionFromConfig } from '../structure/schema-selection.js';
import { structureFingerprint } from '../structure/structure-fingerprint.js';

/**
 * What the template fingerprint takes from production: the structure's fingerprint and the mirrored tables'
 * exact checksums, read side by side on `production` and a second read-only session.
 */
export async function readProductionFingerprint(
  config: ResolvedConfig,
  production: pg.ClientBase,
): Promise<{ structure: string; data: Record<string, TableChecksum> }> {
  const second = await connect(config.production, 'production');
  try {
    const [structure, data] = await Promise.all([
      structureFingerprint(production, selectionFromConfig(config)),
      // Compared only with fingerprints taken on this production server, so the quicker hash will do.
      tableChecksums(second, config.mirror.full, { quick: true }),
    ]);
    return { structure, data };
  } finally {
    await second.end();
  }
}
