import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type pg from 'pg';
import { DumpError } from '../errors.js';
import { createStructureObjects } from '../structure/apply-structure.js';
import { structureFingerprint } from '../structure/structure-fingerprint.js';
import type { StructureSnapshot } from '../structure/structure-snapshot.js';
import {
  dumpFilePath,
  MANIFEST_FILE,
  readDumpManifest,
  verifyDumpFiles,
  type DumpManifest,
} from './dump-manifest.js';
import { enforceMirrorPolicy, type MirrorPolicy } from './mirror-policy.js';
import { endTransaction } from '../connection/in-transaction.js';
import { applySessionSettings } from './mirror-session.js';
import { replaceTableData } from './replace-table-data.js';
import { readCatalog, resolveTables } from './resolve-tables.js';
import { copiedColumns } from './sync-tables.js';
import { checksumTable } from './table-checksum.js';
import { sequenceBounds } from './table-sequences.js';

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
  checkTablesAgainstStructure(manifest, snapshot);
  const files = await Promise.all(
    manifest.tables.map((table, index) => dumpFilePath(dir, table.file, `tables[${index}].file`)),
  );

  await target.query('BEGIN');
  let failure: unknown;
  try {
    await createStructureObjects(target, snapshot, { replace: options.replace ?? false });
    await checkSequenceValues(target, manifest);
    await applySessionSettings(target, manifest.settings);
    const rowCounts = await replaceTableData(
      target,
      manifest.tables.map((table, index) => ({
        table: table.table,
        columns: table.columns,
        sequences: table.sequences,
        open: (): Readable => {
          const file = createReadStream(files[index]!);
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
  const text = await readFile(await dumpFilePath(dir, file, 'structure.file'), 'utf8');
  let snapshot: StructureSnapshot;
  try {
    snapshot = JSON.parse(text) as StructureSnapshot;
  } catch (error) {
    throw new DumpError(file, `${file} is not valid JSON, so the dump is corrupted. Write the dump again.`, {
      cause: error,
      field: 'structure.file',
    });
  }
  if ((await structureFingerprint(snapshot)) !== manifest.structure.fingerprint) {
    throw new DumpError(
      file,
      `${file} does not match the structure fingerprint in the manifest. Write the dump again.`,
      { field: 'structure.fingerprint' },
    );
  }
  return snapshot;
}

/** Every table the manifest loads is in the structure, with exactly the columns its COPY text holds. */
function checkTablesAgainstStructure(manifest: DumpManifest, snapshot: StructureSnapshot): void {
  manifest.tables.forEach((entry, index) => {
    const table = snapshot.tables.find((candidate) => candidate.key === entry.table);
    if (!table) {
      throw new DumpError(
        MANIFEST_FILE,
        `tables[${index}].table in ${MANIFEST_FILE} is ${entry.table}, which ${manifest.structure.file} does not describe. Write the dump again rather than editing it.`,
        { field: `tables[${index}].table` },
      );
    }
    const expected = copiedColumns(table);
    entry.columns.forEach((column, position) => {
      if (!expected.includes(column) || entry.columns.indexOf(column) !== position) {
        throw new DumpError(
          MANIFEST_FILE,
          `tables[${index}].columns[${position}] in ${MANIFEST_FILE} is "${column}", which is not a column of ${entry.table} that a dump holds (${expected.join(', ')}), or is listed twice. Write the dump again rather than editing it.`,
          { field: `tables[${index}].columns[${position}]` },
        );
      }
    });
  });
}

/**
 * Each sequence value of the manifest names a column that draws from a sequence in the restored structure
 * and lies within that sequence's range, so `setval` cannot fail half-way with a bare database error.
 */
async function checkSequenceValues(target: pg.ClientBase, manifest: DumpManifest): Promise<void> {
  const catalog = await readCatalog(target);
  for (const [index, entry] of manifest.tables.entries()) {
    if (entry.sequences.length === 0) continue;
    const table = resolveTables(catalog, [entry.table], 'target database')[0]!;
    const bounds = await sequenceBounds(target, table);
    for (const [position, value] of entry.sequences.entries()) {
      const field = `tables[${index}].sequences[${position}]`;
      const sequence = bounds.get(value.column);
      if (!sequence) {
        throw new DumpError(
          MANIFEST_FILE,
          `${field}.column in ${MANIFEST_FILE} is "${value.column}", but ${entry.table}.${value.column} draws from no sequence in the dump's structure. Write the dump again rather than editing it.`,
          { field: `${field}.column` },
        );
      }
      const last = BigInt(value.lastValue);
      if (last < BigInt(sequence.min) || last > BigInt(sequence.max)) {
        throw new DumpError(
          MANIFEST_FILE,
          `${field}.lastValue in ${MANIFEST_FILE} sets sequence ${sequence.sequence} (of ${entry.table}.${value.column}) to ${value.lastValue}, outside its range ${sequence.min} to ${sequence.max}. Nothing was changed; write the dump again rather than editing it.`,
          { field: `${field}.lastValue` },
        );
      }
    }
  }
}
