import { connect } from '../../src/connection/connect.js';
import {
  captureBaseline,
  unchangedChecksums,
  type BaselineState,
} from '../../src/mirror/production-baseline.js';
import { tableChecksums } from '../../src/mirror/index.js';
import { structureFingerprint } from '../../src/structure/index.js';
import { selectionFromConfig } from '../../src/structure/schema-selection.js';
import { median, MIRRORED, repeat, round, timed, type BenchContext } from '../bench-context.js';
import type { FingerprintResult } from '../results.js';

/**
 * What the fingerprint's inputs cost to read from production: the structure, exact checksums of the
 * mirrored tables (quick, and with md5 as dumps take them), proving them unchanged since a reading (what a
 * warm run does instead of hashing), and the catalog statistics they are not.
 */
export async function measureFingerprint(ctx: BenchContext): Promise<FingerprintResult> {
  const production = await connect(ctx.config.production, 'production');
  const medianOf5 = async (fn: () => Promise<unknown>) =>
    median(await repeat(5, async () => (await timed(fn))[0]));
  try {
    const checksumMs = await medianOf5(() => tableChecksums(production, MIRRORED, { quick: true }));
    const md5ChecksumMs = await medianOf5(() => tableChecksums(production, MIRRORED));
    let state: BaselineState | undefined;
    const sums = await tableChecksums(production, MIRRORED, {
      quick: true,
      inSnapshot: async (client, catalog) => {
        state = await captureBaseline(client, catalog);
      },
    });
    const tables = Object.fromEntries(
      Object.entries(state!.tables).map(([key, table]) => [key, { ...table, checksum: sums[key]! }]),
    );
    const baseline = { ...state!, requested: MIRRORED, structure: 'same', tables };
    const unchangedMs = await medianOf5(async () => {
      const result = await unchangedChecksums(production, baseline, MIRRORED, Promise.resolve('same'));
      if ('stale' in result) throw new Error(`bench: the production baseline did not hold: ${result.stale}`);
    });
    const structureMs = await medianOf5(() =>
      structureFingerprint(production, selectionFromConfig(ctx.config)),
    );
    const statsMs = await medianOf5(() =>
      production.query(
        `SELECT relid::regclass::text, n_tup_ins, n_tup_upd, n_tup_del, pg_relation_size(relid)
         FROM pg_stat_user_tables WHERE relid = ANY($1::regclass[])`,
        [MIRRORED],
      ),
    );
    return {
      structureMs: round(structureMs),
      checksumMs: round(checksumMs),
      md5ChecksumMs: round(md5ChecksumMs),
      unchangedMs: round(unchangedMs),
      statsMs: round(statsMs, 2),
    };
  } finally {
    await production.end();
  }
}
