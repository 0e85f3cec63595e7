import { SeedError } from '../errors.js';
import { JsonLocator, type TextPosition } from './json-locator.js';
import { formatJsonPath, type JsonPath } from './json-path.js';

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

  /** Parses the text as JSON; a syntax error becomes a {@link SeedError} with its line and column. */
  parse(): unknown {
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
