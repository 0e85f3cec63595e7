import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type pg from 'pg';
import { DumpError } from '../errors.js';
import { createStructureObjects } from '../structure/apply-structure.js';
import { structureFingerprint } from '../structure/structure-fingerprint.js';
import type { StructureSnapshot } from '../structure/structure-snapshot.js';
import { readDumpManifest, verifyDumpFiles, type DumpManifest } from './dump-manifest.js';
import { enforceMirrorPolicy, type MirrorPolicy } from './mirror-policy.js';
import { applySessionSettings, endTransaction } from './mirror-session.js';
import { replaceTableData } from './replace-table-data.js';
import { readCatalog, resolveTables } from './resolve-tables.js';
import { checksumTable } from './table-checksum.js';

/** Options of {@link restoreDump}. */
export interface RestoreDumpOptions {
  /** The dump directory createDump wrote. */
  dir: string;
  /** The test database to rebuild; not inside a transaction. */
  target: pg.ClientBase;
  /** Which tables may receive production rows; checked again, since a dump is only files. */
  policy: MirrorPolicy;
  /**
   * Drop the dump's schemas in the target first, so a restore replaces an earlier one.
   * @default false
   */
  replace?: boolean;
}

/** What {@link restoreDump} restored. */
export interface RestoreDumpResult {
  manifest: DumpManifest;
  /** Rows loaded per table, in load order. */
  tables: { table: string; rowCount: number }[];
}

/**
 * Rebuilds a test database from a dump, with no pg_dump, pg_restore or psql: checks every file against the
 * manifest first (a corrupted or truncated file is refused with a {@link DumpError} naming it, before
 * anything is written), creates the structure and loads the rows in one transaction, and verifies each
 * table's content checksum before committing.
 *
 * @example
 * ```ts
 * await restoreDump({ dir: 'tests/snapshot', target: test, policy: config, replace: true });
 * ```
 */
export async function restoreDump(options: RestoreDumpOptions): Promise<RestoreDumpResult> {
  const { dir, target } = options;
  const manifest = await readDumpManifest(dir);
  for (const table of manifest.tables) enforceMirrorPolicy(options.policy, table.table);
  await verifyDumpFiles(dir, manifest);
  const snapshot = await readSnapshot(dir, manifest);

  await target.query('BEGIN');
  let failure: unknown;
  try {
    await createStructureObjects(target, snapshot, { replace: options.replace ?? false });
    await applySessionSettings(target, manifest.settings);
    const rowCounts = await replaceTableData(
      target,
      manifest.tables.map((table) => ({
        table: table.table,
        columns: table.columns,
        sequences: table.sequences,
        open: (): Readable => {
          const file = createReadStream(path.join(dir, table.file));
          return table.compression === 'gzip' ? file.pipe(createGunzip()) : file;
        },
      })),
    );
    const catalog = await readCatalog(target);
    for (const table of manifest.tables) {
      const loaded = await checksumTable(
        target,
        resolveTables(catalog, [table.table], 'target database')[0]!,
      );
      if (loaded.rowCount !== table.rowCount || loaded.checksum !== table.checksum) {
        throw new DumpError(
          table.file,
          `Restoring ${table.table} from ${table.file} gave ${loaded.rowCount} rows with checksum ${loaded.checksum}, but the manifest records ${table.rowCount} rows with checksum ${table.checksum}. Nothing was changed; write the dump again.`,
        );
      }
    }
    await endTransaction(target);
    return { manifest, tables: [...rowCounts].map(([table, rowCount]) => ({ table, rowCount })) };
  } catch (error) {
    failure = error;
    await endTransaction(target, failure);
    throw error;
  }
}

async function readSnapshot(dir: string, manifest: DumpManifest): Promise<StructureSnapshot> {
  const file = manifest.structure.file;
  const snapshot = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as StructureSnapshot;
  if ((await structureFingerprint(snapshot)) !== manifest.structure.fingerprint) {
    throw new DumpError(
      file,
      `${file} does not match the structure fingerprint in the manifest. Write the dump again.`,
    );
  }
  return snapshot;
}
