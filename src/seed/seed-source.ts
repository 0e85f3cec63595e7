import { SeedError } from '../errors.js';
import { JsonLocator, type TextPosition } from './json-locator.js';
import { formatJsonPath, type JsonPath } from './json-path.js';

/**
 * How deeply objects and arrays may nest in a seed file (the top-level object is level 1). Seed data needs a
 * handful of levels; the limit keeps a runaway or hostile file from exhausting the stack of anything that
 * walks it.
 */
export const MAX_SEED_DEPTH = 100;

/**
 * Property names refused anywhere in a seed file: JavaScript gives them a special meaning on plain objects
 * (`__proto__` sets an object's prototype), so a row using them would not be the row the file shows.
 */
export const FORBIDDEN_SEED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * One seed file's text, kept so that an error found at any later stage can point at the line and column of
 * the value it is about.
 */
export class SeedSource {
  private locator: JsonLocator | undefined;

  constructor(
    /** The file as given to the loader. */
    readonly file: string,
    readonly text: string,
  ) {}

  /**
   * A {@link SeedError} about the value at `path`, its message prefixed with `file:line:column` and the path.
   *
   * @example
   * throw source.error(['public.projects', 1, 'nmae'], 'public.projects has no column "nmae".');
   */
  error(path: JsonPath, message: string, extra: { constraint?: string; cause?: unknown } = {}): SeedError {
    const position = this.locate(path);
    const formatted = formatJsonPath(path);
    const where = position ? `${this.file}:${position.line}:${position.column}` : this.file;
    return new SeedError(
      {
        file: this.file,
        path: formatted,
        line: position?.line,
        column: position?.column,
        constraint: extra.constraint,
      },
      `${where} ${formatted}: ${message}`,
      { cause: extra.cause },
    );
  }

  /** `file:line:column` of the value at `path` (just `file` if it cannot be found). */
  place(path: JsonPath): string {
    const position = this.locate(path);
    return position ? `${this.file}:${position.line}:${position.column}` : this.file;
  }

  private locate(path: JsonPath): TextPosition | undefined {
    this.locator ??= new JsonLocator(this.text);
    return this.locator.locate(path);
  }

  /**
   * Parses the text as JSON; a syntax error, nesting deeper than {@link MAX_SEED_DEPTH} or a key in
   * {@link FORBIDDEN_SEED_KEYS} becomes a {@link SeedError} with its line and column.
   */
  parse(): unknown {
    // Checked first and without recursion: the syntax-error and path locators recurse once per level.
    const unsafe = new JsonLocator(this.text).findUnsafe(MAX_SEED_DEPTH, FORBIDDEN_SEED_KEYS);
    if (unsafe) {
      const { path, position } = unsafe;
      const formatted = formatJsonPath(path);
      throw new SeedError(
        { file: this.file, path: formatted, line: position.line, column: position.column },
        `${this.file}:${position.line}:${position.column} ${formatted}: ` +
          (unsafe.kind === 'depth'
            ? `Objects and arrays nest more than ${MAX_SEED_DEPTH} levels deep here; seed files may nest at most ${MAX_SEED_DEPTH}. Flatten the value, or insert such a document from the test that needs it; nothing was loaded.`
            : `"${unsafe.key}" cannot be a key in a seed file: JavaScript treats it specially on objects, so the row would not be what the file says. Rename the key (a column named "${unsafe.key}" cannot be seeded from JSON; set it in a test or a SQL script); nothing was loaded.`),
      );
    }
    try {
      // JSON.parse rejects a byte-order mark, which editors on Windows like to write.
      return JSON.parse(this.text.replace(/^\uFEFF/, ''));
    } catch (error) {
      const problem = new JsonLocator(this.text).syntaxError();
      const position = problem?.position;
      const reason = problem?.message ?? (error as Error).message;
      const where = position ? `${this.file}:${position.line}:${position.column}` : this.file;
      throw new SeedError(
        { file: this.file, path: '$', line: position?.line, column: position?.column },
        `${where}: ${this.file} is not valid JSON: ${reason}. Fix the file; nothing was loaded.`,
      );
    }
  }
}
