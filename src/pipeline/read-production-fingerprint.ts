import type { ResolvedConfig } from '../config/resolve-config.js';
import { connect } from '../connection/connect.js';
import { tableChecksums, type TableChecksum } from '../mirror/table-checksum.js';
import { selectionFromConfig } from '../structure/schema-selection.js';
import { structureFingerprint } from '../structure/structure-fingerprint.js';
import type { StructureSource } from '../structure/structure-source.js';

/**
 * What the template fingerprint takes from production: the structure's fingerprint (of `structure`, a
 * snapshot, possibly still being read, or a session on production to read it), and the mirrored tables' exact checksums,
 * read meanwhile over other read-only sessions sharing one snapshot.
 */
export async function readProductionFingerprint(
  config: ResolvedConfig,
  structure: StructureSource | Promise<StructureSource>,
): Promise<{ structure: string; data: Record<string, TableChecksum> }> {
  const openSession = () => connect(config.production, 'production');
  const coordinator = await openSession();
  try {
    const [structureDigest, data] = await Promise.all([
      (async () => structureFingerprint(await structure, selectionFromConfig(config)))(),
      // Compared only with fingerprints taken on this production server, so the quicker hash will do.
      tableChecksums(coordinator, config.mirror.full, { quick: true, openSession }),
    ]);
    return { structure: structureDigest, data };
  } finally {
    await coordinator.end();
  }
}
