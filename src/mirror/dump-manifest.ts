import { readFile, realpath } from 'node:fs/promises';
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
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new DumpError(
      MANIFEST_FILE,
      `${MANIFEST_FILE} in ${dir} is not valid JSON, so the dump is corrupted or truncated. Write the dump again.`,
      {
        cause: error,
      },
    );
  }
  validateManifest(manifest, dir);
  return manifest;
}

/**
 * Checks a parsed manifest against the format documented in the README ("manifest.json"), field by field, so
 * that nothing later trips over a tampered or hand-edited one. Throws a {@link DumpError} whose `field` is the
 * first wrong field and whose message says what was expected and what was found.
 */
function validateManifest(manifest: unknown, dir: string): asserts manifest is DumpManifest {
  const fail = (field: string, expected: string, found: unknown): never => {
    throw new DumpError(
      MANIFEST_FILE,
      `${MANIFEST_FILE} in ${dir} is not a valid pgtwin dump manifest: ${field} must be ${expected}, found ${describeValue(found)}. ` +
        'Write the dump again with createDump (pgtwin dump) rather than editing it by hand.',
      { field },
    );
  };
  if (!isObject(manifest) || manifest.format !== DUMP_FORMAT) {
    throw new DumpError(
      MANIFEST_FILE,
      `${MANIFEST_FILE} in ${dir} is not a pgtwin dump manifest (format must be "${DUMP_FORMAT}", found ${describeValue(isObject(manifest) ? manifest.format : manifest)}). Write the dump again with createDump.`,
      { field: 'format' },
    );
  }
  if (manifest.formatVersion !== DUMP_FORMAT_VERSION) {
    throw new DumpError(
      MANIFEST_FILE,
      `The dump in ${dir} has format version ${String(manifest.formatVersion)} (pgtwin ${String(manifest.pgtwinVersion)}); this pgtwin reads version ${DUMP_FORMAT_VERSION}. Write the dump again with this pgtwin version.`,
      { field: 'formatVersion' },
    );
  }
  if (typeof manifest.pgtwinVersion !== 'string') fail('pgtwinVersion', 'a string', manifest.pgtwinVersion);
  if (typeof manifest.createdAt !== 'string')
    fail('createdAt', 'an ISO 8601 date string', manifest.createdAt);
  if (!isObject(manifest.settings))
    fail('settings', 'an object of setting names to strings', manifest.settings);
  for (const [name, value] of Object.entries(manifest.settings as object)) {
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name))
      fail(`settings[${JSON.stringify(name)}]`, 'named by a setting name', name);
    if (typeof value !== 'string') fail(`settings.${name}`, 'a string', value);
  }
  const checkFile = (entry: Record<string, unknown>, at: string): void => {
    if (typeof entry.file !== 'string' || !isInsideDump(entry.file))
      fail(
        `${at}.file`,
        'a relative path inside the dump directory, such as "data/public.prompts.copy" (no "..", no absolute path)',
        entry.file,
      );
    if (!Number.isSafeInteger(entry.bytes) || (entry.bytes as number) < 0)
      fail(`${at}.bytes`, 'a whole number of bytes', entry.bytes);
    if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256))
      fail(`${at}.sha256`, 'a SHA-256 as 64 lowercase hex digits', entry.sha256);
  };
  if (!isObject(manifest.structure))
    fail('structure', 'an object (file, bytes, sha256, fingerprint)', manifest.structure);
  const structure = manifest.structure as Record<string, unknown>;
  checkFile(structure, 'structure');
  if (typeof structure.fingerprint !== 'string' || structure.fingerprint === '')
    fail('structure.fingerprint', 'the structure fingerprint, a string', structure.fingerprint);
  if (!Array.isArray(manifest.tables)) fail('tables', 'an array of tables', manifest.tables);
  (manifest.tables as unknown[]).forEach((table, index) => {
    const at = `tables[${index}]`;
    if (!isObject(table)) return fail(at, 'an object describing one table', table);
    if (typeof table.table !== 'string' || !/^[^.]+\.[^.]+$/.test(table.table))
      fail(`${at}.table`, 'a table name "schema.table"', table.table);
    checkFile(table, at);
    if (table.compression !== null && table.compression !== 'gzip')
      fail(`${at}.compression`, 'null or "gzip"', table.compression);
    if (!Array.isArray(table.columns) || table.columns.length === 0)
      fail(`${at}.columns`, 'a non-empty array of column names', table.columns);
    (table.columns as unknown[]).forEach((column, position) => {
      if (typeof column !== 'string' || column === '')
        fail(`${at}.columns[${position}]`, 'a column name', column);
    });
    if (!Number.isSafeInteger(table.rowCount) || (table.rowCount as number) < 0)
      fail(`${at}.rowCount`, 'a whole number of rows', table.rowCount);
    if (typeof table.checksum !== 'string' || table.checksum === '')
      fail(`${at}.checksum`, 'the content checksum, a string', table.checksum);
    if (!Array.isArray(table.sequences))
      fail(`${at}.sequences`, 'an array (empty when no column draws from a sequence)', table.sequences);
    (table.sequences as unknown[]).forEach((sequence, position) => {
      const where = `${at}.sequences[${position}]`;
      if (!isObject(sequence)) return fail(where, 'an object (column, lastValue, isCalled)', sequence);
      if (typeof sequence.column !== 'string' || !(table.columns as string[]).includes(sequence.column))
        fail(
          `${where}.column`,
          `one of the table's columns (${(table.columns as string[]).join(', ')})`,
          sequence.column,
        );
      if (typeof sequence.lastValue !== 'string' || !isBigint(sequence.lastValue))
        fail(`${where}.lastValue`, 'a bigint as decimal text, such as "42"', sequence.lastValue);
      if (typeof sequence.isCalled !== 'boolean')
        fail(`${where}.isCalled`, 'true or false', sequence.isCalled);
    });
  });
}

/** A dump file path that stays inside the dump directory, as far as its text goes (symlinks are checked on reading). */
function isInsideDump(file: string): boolean {
  if (file === '' || file.includes('\0') || path.isAbsolute(file) || path.win32.isAbsolute(file))
    return false;
  return !file.split(/[\\/]/).some((segment) => segment === '..');
}

const BIGINT_MIN = -(2n ** 63n);
const BIGINT_MAX = 2n ** 63n - 1n;

function isBigint(text: string): boolean {
  if (!/^-?\d{1,19}$/.test(text)) return false;
  const value = BigInt(text);
  return value >= BIGINT_MIN && value <= BIGINT_MAX;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A found value for a message: its type and a short rendering. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  if (value === null) return 'null';
  const json = JSON.stringify(value) ?? String(value);
  const shown = json.length > 60 ? `${json.slice(0, 57)}...` : json;
  if (Array.isArray(value)) return `an array ${shown}`;
  if (typeof value === 'object') return `an object ${shown}`;
  return `${typeof value === 'string' ? 'the string' : `the ${typeof value}`} ${shown}`;
}

/**
 * The absolute path of a file the manifest lists, after checking that it really is inside `dir`: a symbolic
 * link (of the file or a directory on its way) leading out of the dump is refused with a {@link DumpError}.
 */
export async function dumpFilePath(dir: string, file: string, field: string): Promise<string> {
  const where = path.join(dir, file);
  let real: string;
  let realDir: string;
  try {
    [real, realDir] = await Promise.all([realpath(where), realpath(dir)]);
  } catch {
    return where; // missing: the caller reports it
  }
  const relative = path.relative(realDir, real);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new DumpError(
      file,
      `${field} in ${MANIFEST_FILE} names ${file}, which leads out of the dump directory ${dir} (to ${real}) through a symbolic link. A dump reads only its own files: replace the link with the file itself, or write the dump again.`,
      { field },
    );
  }
  return where;
}

/**
 * Checks every file the manifest lists against its size and SHA-256, before anything is written.
 * Throws {@link DumpError} naming the first file that is missing, truncated or corrupted.
 */
export async function verifyDumpFiles(dir: string, manifest: DumpManifest): Promise<void> {
  const files = [
    { expected: manifest.structure as DumpFile, field: 'structure.file' },
    ...manifest.tables.map((expected, index) => ({ expected, field: `tables[${index}].file` })),
  ];
  for (const { expected, field } of files) {
    const where = await dumpFilePath(dir, expected.file, field);
    let actual: FileDigest;
    try {
      actual = await digestFile(where);
    } catch (error) {
      throw new DumpError(
        expected.file,
        `The dump file ${where} is missing or unreadable: ${(error as Error).message}. Restore the complete dump directory.`,
        { cause: error, field },
      );
    }
    if (actual.bytes < expected.bytes) {
      throw new DumpError(
        expected.file,
        `The dump file ${where} is truncated: ${actual.bytes} bytes where ${MANIFEST_FILE} records ${expected.bytes}. Restore the complete file (check Git LFS or a partial download) or write the dump again.`,
        { field },
      );
    }
    if (actual.bytes !== expected.bytes || actual.sha256 !== expected.sha256) {
      throw new DumpError(
        expected.file,
        `The dump file ${where} is corrupted: its SHA-256 does not match ${MANIFEST_FILE}. Restore the original file (check line-ending conversion in Git: mark the dump directory binary in .gitattributes) or write the dump again.`,
        { field },
      );
    }
  }
}
