import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { DumpError } from '../errors.js';
import { readStructure } from '../structure/read-structure.js';
import { structureFingerprint } from '../structure/structure-fingerprint.js';
import { DEFAULT_SCHEMA_SELECTION, type SchemaSelection } from '../structure/schema-selection.js';
import { sortTablesByForeignKeys } from '../structure/sort-tables-by-foreign-keys.js';
import { quoteIdent } from '../structure/table-catalog.js';
import {
  DUMP_FORMAT,
  DUMP_FORMAT_VERSION,
  MANIFEST_FILE,
  type DumpManifest,
  type DumpTable,
} from './dump-manifest.js';
import { DigestStream, digestFile } from './file-digest.js';
import { enforceMirrorPolicy, type MirrorPolicy } from './mirror-policy.js';
import { endTransaction } from '../connection/in-transaction.js';
import { beginSnapshot, MIRROR_SESSION_SETTINGS } from './mirror-session.js';
import { pgtwinVersion } from './pgtwin-version.js';
import { readTables } from './resolve-tables.js';
import { copiedColumns } from './sync-tables.js';
import { checksumTable } from './table-checksum.js';
import { readTableSequences } from './table-sequences.js';

export const STRUCTURE_FILE = 'structure.json';
export const DATA_DIR = 'data';

/** Options of {@link createDump}. */
export interface CreateDumpOptions {
  /** The production database, ideally opened read-only; not inside a transaction. */
  source: pg.ClientBase;
  /** Directory to write; created if missing. Must be empty or hold an earlier dump, which is replaced. */
  dir: string;
  /** Which tables may carry production rows. */
  policy: MirrorPolicy;
  /**
   * Tables whose data to include, `schema.table`.
   * @default policy.mirror.full
   */
  tables?: readonly string[];
  /**
   * Schemas whose structure to include.
   * @default DEFAULT_SCHEMA_SELECTION
   */
  schemas?: SchemaSelection;
  /**
   * Gzip the data files. Plain COPY text diffs well in Git; gzip is smaller.
   * @default false
   */
  gzip?: boolean;
}

/**
 * Writes a portable snapshot of production for places that cannot reach it (CI): the structure, the
 * mirrored tables' rows as COPY text, and `manifest.json` with sizes, SHA-256s, row counts and content
 * checksums. All rows are read in one read-only snapshot and streamed to disk. See DUMP-FORMAT.md.
 *
 * @example
 * ```ts
 * const manifest = await createDump({ source: production, dir: 'tests/snapshot', policy: config });
 * manifest.tables.map((t) => `${t.table}: ${t.rowCount}`); // ['public.object_models: 42', ...]
 * ```
 */
export async function createDump(options: CreateDumpOptions): Promise<DumpManifest> {
  const { source, dir, policy } = options;
  const names = (options.tables ?? policy.mirror.full).map((name) =>
    name.includes('.') ? name : `public.${name}`,
  );
  for (const name of names) enforceMirrorPolicy(policy, name);
  await prepareDirectory(dir);

  const structure = await readStructure(source, options.schemas ?? DEFAULT_SCHEMA_SELECTION);
  await writeFile(path.join(dir, STRUCTURE_FILE), JSON.stringify(structure, null, 1));
  const tables: DumpTable[] = [];

  await beginSnapshot(source);
  let failure: unknown;
  try {
    const mirrored = await readTables(source, names, 'source database');
    for (const table of sortTablesByForeignKeys(mirrored).tables) {
      // The structure was read in its own transaction; a change since then would make it disagree with the rows.
      const described = structure.tables.find((t) => t.key === table.key);
      if (described === undefined || !isDeepStrictEqual(described, table)) {
        throw new DumpError(
          STRUCTURE_FILE,
          `The structure of ${table.key} is not in the dumped schemas or changed while dumping. Include its schema in \`schemas\`, or dump again once migrations are done.`,
        );
      }
      const columns = copiedColumns(table);
      const file = `${DATA_DIR}/${encodeURIComponent(table.key)}.copy${options.gzip ? '.gz' : ''}`;
      const copyOut = source.query(
        copyStreams.to(
          `COPY (SELECT ${columns.map(quoteIdent).join(', ')} FROM ${table.qualifiedName}) TO STDOUT`,
        ),
      );
      const digest = new DigestStream();
      const output = createWriteStream(path.join(dir, file));
      await (options.gzip
        ? pipeline(copyOut, createGzip(), digest, output)
        : pipeline(copyOut, digest, output));
      const { checksum, rowCount } = await checksumTable(source, table);
      tables.push({
        table: table.key,
        file,
        ...digest.digest(),
        columns,
        compression: options.gzip ? 'gzip' : null,
        rowCount,
        checksum,
        sequences: await readTableSequences(source, table),
      });
    }
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    await endTransaction(source, failure);
  }

  const manifest: DumpManifest = {
    format: DUMP_FORMAT,
    formatVersion: DUMP_FORMAT_VERSION,
    pgtwinVersion: pgtwinVersion(),
    createdAt: new Date().toISOString(),
    settings: { ...MIRROR_SESSION_SETTINGS },
    structure: {
      file: STRUCTURE_FILE,
      ...(await digestFile(path.join(dir, STRUCTURE_FILE))),
      fingerprint: await structureFingerprint(structure),
    },
    tables,
  };
  // Written last: a dump without its manifest is visibly incomplete.
  await writeFile(path.join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

async function prepareDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (entries.length > 0 && !entries.includes(MANIFEST_FILE)) {
    throw new DumpError(
      '.',
      `Refusing to write a dump into ${dir}: it holds other files and no ${MANIFEST_FILE}. Choose an empty directory or an earlier dump's.`,
    );
  }
  await rm(path.join(dir, MANIFEST_FILE), { force: true });
  await rm(path.join(dir, STRUCTURE_FILE), { force: true });
  await rm(path.join(dir, DATA_DIR), { recursive: true, force: true });
  await mkdir(path.join(dir, DATA_DIR));
}
