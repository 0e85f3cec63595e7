import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DumpError } from '../errors.js';
import { digestFile, type FileDigest } from './file-digest.js';
import type { SequenceValue } from './table-sequences.js';

/** `manifest.json`'s `format`. */
export const DUMP_FORMAT = 'pgtwin-dump';
/** Bumped when a reader of the previous version could misread a new dump. */
export const DUMP_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';

/** A file of the dump, its path relative to the dump directory, and its digest. */
export interface DumpFile extends FileDigest {
  file: string;
}

/** One mirrored table in a dump. */
export interface DumpTable extends DumpFile {
  /** `schema.table`. */
  table: string;
  /** Columns of the COPY text, in order (generated columns are left out). */
  columns: string[];
  /** `gzip` when the data file is gzip-compressed COPY text. */
  compression: 'gzip' | null;
  rowCount: number;
  /** {@link tableChecksums} of the rows when dumped; a restore must reproduce it. */
  checksum: string;
  /** The owned sequences' state. */
  sequences: SequenceValue[];
}

/** `manifest.json`: what a dump holds and how to check it. See DUMP-FORMAT.md. */
export interface DumpManifest {
  format: typeof DUMP_FORMAT;
  formatVersion: typeof DUMP_FORMAT_VERSION;
  pgtwinVersion: string;
  /** ISO 8601, UTC. */
  createdAt: string;
  /** Session settings the COPY text was written (and checksums computed) under; a restore reads it under them. */
  settings: Record<string, string>;
  /** The `StructureSnapshot` JSON file and the structure fingerprint. */
  structure: DumpFile & { fingerprint: string };
  /** Tables in load order: referenced tables first. */
  tables: DumpTable[];
}

/** Reads and checks `manifest.json` of the dump in `dir`; throws {@link DumpError} naming what is wrong. */
export async function readDumpManifest(dir: string): Promise<DumpManifest> {
  let text: string;
  try {
    text = await readFile(path.join(dir, MANIFEST_FILE), 'utf8');
  } catch (error) {
    throw new DumpError(
      MANIFEST_FILE,
      `No pgtwin dump in ${dir}: cannot read ${MANIFEST_FILE} (${(error as Error).message}). Point at the directory createDump wrote.`,
      {
        cause: error,
      },
    );
  }
  let manifest: DumpManifest;
  try {
    manifest = JSON.parse(text) as DumpManifest;
  } catch (error) {
    throw new DumpError(
      MANIFEST_FILE,
      `${MANIFEST_FILE} in ${dir} is not valid JSON, so the dump is corrupted or truncated. Write the dump again.`,
      {
        cause: error,
      },
    );
  }
  if (
    manifest?.format !== DUMP_FORMAT ||
    !Array.isArray(manifest.tables) ||
    typeof manifest.structure !== 'object'
  ) {
    throw new DumpError(
      MANIFEST_FILE,
      `${MANIFEST_FILE} in ${dir} is not a pgtwin dump manifest. Write the dump again with createDump.`,
    );
  }
  if (manifest.formatVersion !== DUMP_FORMAT_VERSION) {
    throw new DumpError(
      MANIFEST_FILE,
      `The dump in ${dir} has format version ${String(manifest.formatVersion)} (pgtwin ${manifest.pgtwinVersion}); this pgtwin reads version ${DUMP_FORMAT_VERSION}. Write the dump again with this pgtwin version.`,
    );
  }
  return manifest;
}

/**
 * Checks every file the manifest lists against its size and SHA-256, before anything is written.
 * Throws {@link DumpError} naming the first file that is missing, truncated or corrupted.
 */
export async function verifyDumpFiles(dir: string, manifest: DumpManifest): Promise<void> {
  for (const expected of [manifest.structure, ...manifest.tables]) {
    const where = path.join(dir, expected.file);
    let actual: FileDigest;
    try {
      actual = await digestFile(where);
    } catch (error) {
      throw new DumpError(
        expected.file,
        `The dump file ${where} is missing or unreadable: ${(error as Error).message}. Restore the complete dump directory.`,
        {
          cause: error,
        },
      );
    }
    if (actual.bytes < expected.bytes) {
      throw new DumpError(
        expected.file,
        `The dump file ${where} is truncated: ${actual.bytes} bytes where ${MANIFEST_FILE} records ${expected.bytes}. Restore the complete file (check Git LFS or a partial download) or write the dump again.`,
      );
    }
    if (actual.bytes !== expected.bytes || actual.sha256 !== expected.sha256) {
      throw new DumpError(
        expected.file,
        `The dump file ${where} is corrupted: its SHA-256 does not match ${MANIFEST_FILE}. Restore the original file (check line-ending conversion in Git: mark the dump directory binary in .gitattributes) or write the dump again.`,
      );
    }
  }
}
