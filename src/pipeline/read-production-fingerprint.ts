import type pg from 'pg';
import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { tableChecksums, type TableChecksum } from '../mirror/table-checksum.js';
import { selectionFromConfig } from '../structure/schema-selection.js';
import { structureFingerprint } from '../structure/structure-fingerprint.js';

/**
 * What the template fingerprint takes from production: the structure's fingerprint, read on `production`, and
 * the mirrored tables' exact checksums, read meanwhile over other read-only sessions sharing one snapshot.
 */
export async function readProductionFingerprint(
  config: ResolvedConfig,
  production: pg.ClientBase,
): Promise<{ structure: string; data: Record<string, TableChecksum> }> {
  const openSession = () => connect(config.production, 'production');
  const coordinator = await openSession();
  try {
    const [structure, data] = await Promise.all([
      structureFingerprint(production, selectionFromConfig(config)),
      // Compared only with fingerprints taken on this production server, so the quicker hash will do.
      tableChecksums(coordinator, config.mirror.full, { quick: true, openSession }),
    ]);
    return { structure, data };
  } finally {
    await coordinator.end();
  }
}
