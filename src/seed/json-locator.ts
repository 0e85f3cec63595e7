import type { JsonPath } from './json-path.js';

/** A place in a text: 0-based offset, 1-based line and column. */
export interface TextPosition {
  offset: number;
  line: number;
  column: number;
}

/** Where and why a text is not valid JSON. */
export interface JsonSyntaxProblem {
  message: string;
  position: TextPosition;
}

/** Something in a JSON text that is valid JSON but unsafe to parse or use: see {@link JsonLocator.findUnsafe}. */
export type UnsafeJson =
  | { kind: 'depth'; path: JsonPath; position: TextPosition }
  | { kind: 'key'; key: string; path: JsonPath; position: TextPosition };

/** Thrown inside the scanner to unwind once the answer is known. */
class Stop {
  constructor(readonly offset: number) {}
}

class ScanFailure {
  constructor(
    readonly message: string,
    readonly offset: number,
  ) {}
}

/**
 * A small position-tracking JSON scanner. Seeds are parsed with the fast native `JSON.parse`; this scanner only
 * runs when something went wrong, to say where: the line and column of a syntax error (Node's `JSON.parse`
 * message does not always carry one) or of the value at a JSON path.
 *
 * @example
 * const locator = new JsonLocator('{\n  "a": [1, 2]\n}');
 * locator.locate(['a', 1]) // { offset: 13, line: 2, column: 12 }
 */
export class JsonLocator {
  private lineStarts: number[] | undefined;
  private index = 0;

  constructor(private readonly text: string) {}

  /** The first syntax error in the text, or `undefined` when it is valid JSON. */
  syntaxError(): JsonSyntaxProblem | undefined {
    try {
      this.scanDocument(undefined);
      return undefined;
    } catch (error) {
      if (!(error instanceof ScanFailure)) throw error;
      return { message: error.message, position: this.position(error.offset) };
    }
  }

  /**
   * Where the value at `path` starts; for an object property, where its key starts (so an unknown
   * column points at its name). `undefined` when the path is not in the document.
   */
  locate(path: JsonPath): TextPosition | undefined {
    try {
      this.scanDocument(path);
    } catch (error) {
      if (error instanceof Stop) return this.position(error.offset);
      if (error instanceof ScanFailure) return undefined;
      throw error;
    }
    return undefined;
  }

  /**
   * The first object or array nested deeper than `maxDepth` (the root is level 1), or the first property name
   * in `forbiddenKeys`, with its path and position. It walks the text with a stack of its own rather than by
   * recursion, so any nesting is safe to check; it stops at the first problem and reports nothing about
   * syntax (a malformed text may still pass: see {@link syntaxError}). Run it before anything recursive reads
   * the text, this locator included.
   *
   * @example
   * new JsonLocator('{"a": {"__proto__": 1}}').findUnsafe(100, new Set(['__proto__']))
   * // { kind: 'key', key: '__proto__', path: ['a', '__proto__'], position: { offset: 7, line: 1, column: 8 } }
   */
  findUnsafe(maxDepth: number, forbiddenKeys: ReadonlySet<string>): UnsafeJson | undefined {
    const text = this.text;
    // One frame per open container: its current property name or element index, and for objects whether the
    // next string is a property name.
    const steps: (string | number)[] = [];
    const isObject: boolean[] = [];
    let expectKey = false;
    // Strings are skipped with indexOf: seeds run to megabytes, most of it inside strings.
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code === 0x22) {
        let end = i + 1;
        for (;;) {
          end = text.indexOf('"', end);
          if (end === -1) return undefined; // unterminated: a syntax error, not ours to report
          let backslashes = 0;
          while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes++;
          if (backslashes % 2 === 0) break;
          end++;
        }
        const start = i;
        i = end;
        if (!expectKey) continue;
        const raw = text.slice(start + 1, end);
        const key = raw.includes('\\') ? decodeKey(text.slice(start, end + 1)) : raw;
        steps[steps.length - 1] = key;
        expectKey = false;
        if (forbiddenKeys.has(key))
          return { kind: 'key', key, path: [...steps], position: this.position(start) };
      } else if (code === 0x7b || code === 0x5b) {
        if (steps.length + 1 > maxDepth)
          return { kind: 'depth', path: [...steps], position: this.position(i) };
        steps.push(code === 0x5b ? 0 : '');
        isObject.push(code === 0x7b);
        expectKey = code === 0x7b;
      } else if (code === 0x7d || code === 0x5d) {
        steps.pop();
        isObject.pop();
        expectKey = false;
      } else if (code === 0x2c) {
        const top = steps.length - 1;
        if (top < 0) continue;
        if (isObject[top]) expectKey = true;
        else steps[top] = (steps[top] as number) + 1;
      }
    }
    return undefined;
  }

  /** Line and column of a 0-based offset. */
  position(offset: number): TextPosition {
    this.lineStarts ??= lineStarts(this.text);
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.lineStarts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return { offset, line: low + 1, column: offset - this.lineStarts[low]! + 1 };
  }

  private scanDocument(target: JsonPath | undefined): void {
    this.index = this.text.charCodeAt(0) === 0xfeff ? 1 : 0;
    this.skipSpace();
    if (target?.length === 0) throw new Stop(this.index);
    this.scanValue(target, 0);
    this.skipSpace();
    if (this.index < this.text.length)
      this.fail(`Unexpected ${this.describe()} after the end of the JSON value`);
  }

  /** Scans one value; `target` and `depth` say which of its children, if any, to stop at. */
  private scanValue(target: JsonPath | undefined, depth: number): void {
    const char = this.text[this.index];
    if (char === '{') this.scanObject(target, depth);
    else if (char === '[') this.scanArray(target, depth);
    else if (char === '"') this.scanString();
    else if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) this.scanNumber();
    else if (!this.scanWord('true') && !this.scanWord('false') && !this.scanWord('null')) {
      this.fail(`Expected a value but found ${this.describe()}`);
    }
  }

  private scanObject(target: JsonPath | undefined, depth: number): void {
    this.index++;
    this.skipSpace();
    if (this.text[this.index] === '}') {
      this.index++;
      return;
    }
    for (;;) {
      if (this.text[this.index] !== '"')
        this.fail(`Expected a double-quoted property name but found ${this.describe()}`);
      const keyOffset = this.index;
      const key = this.scanString();
      this.skipSpace();
      if (this.text[this.index] !== ':')
        this.fail(`Expected ':' after property name but found ${this.describe()}`);
      this.index++;
      this.skipSpace();
      const onPath = target !== undefined && target[depth] === key;
      if (onPath && depth + 1 === target.length) throw new Stop(keyOffset);
      this.scanValue(onPath ? target : undefined, depth + 1);
      this.skipSpace();
      if (this.text[this.index] === '}') {
        this.index++;
        return;
      }
      if (this.text[this.index] !== ',')
        this.fail(`Expected ',' or '}' after property value but found ${this.describe()}`);
      this.index++;
      this.skipSpace();
      if (this.text[this.index] === '}') this.fail("Trailing ',' before '}' is not allowed in JSON");
    }
  }

  private scanArray(target: JsonPath | undefined, depth: number): void {
    this.index++;
    this.skipSpace();
    if (this.text[this.index] === ']') {
      this.index++;
      return;
    }
    for (let item = 0; ; item++) {
      const onPath = target !== undefined && target[depth] === item;
      if (onPath && depth + 1 === target.length) throw new Stop(this.index);
      this.scanValue(onPath ? target : undefined, depth + 1);
      this.skipSpace();
      if (this.text[this.index] === ']') {
        this.index++;
        return;
      }
      if (this.text[this.index] !== ',')
        this.fail(`Expected ',' or ']' after array element but found ${this.describe()}`);
      this.index++;
      this.skipSpace();
      if (this.text[this.index] === ']') this.fail("Trailing ',' before ']' is not allowed in JSON");
    }
  }

  /** Scans a string literal and returns its value (needed to follow property names). */
  private scanString(): string {
    const start = this.index;
    this.index++;
    for (;;) {
      const code = this.text.charCodeAt(this.index);
      if (Number.isNaN(code)) this.fail('Unterminated string', start);
      if (code === 0x22) break;
      if (code < 0x20) this.fail('Unescaped control character in string (use \\n, \\t, ...)');
      if (code === 0x5c) {
        const escape = this.text[this.index + 1];
        if (escape === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.index + 2, this.index + 6)))
            this.fail('Bad \\u escape in string');
          this.index += 6;
          continue;
        }
        if (escape === undefined || !'"\\/bfnrt'.includes(escape)) this.fail('Bad escape in string');
        this.index += 2;
        continue;
      }
      this.index++;
    }
    this.index++;
    return JSON.parse(this.text.slice(start, this.index)) as string;
  }

  private scanNumber(): void {
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(
      this.text.slice(this.index, this.index + 400),
    );
    if (!match) this.fail(`Malformed number`);
    this.index += match[0].length;
  }

  private scanWord(word: string): boolean {
    if (!this.text.startsWith(word, this.index)) return false;
    this.index += word.length;
    return true;
  }

  private skipSpace(): void {
    while (/[ \t\n\r]/.test(this.text[this.index] ?? '')) this.index++;
  }

  private describe(): string {
    const char = this.text[this.index];
    return char === undefined ? 'the end of the file' : `'${char}'`;
  }

  private fail(message: string, offset = this.index): never {
    throw new ScanFailure(message, offset);
  }
}

/** A property name with escapes, decoded as JSON.parse would (`"__pr\\u006fto__"` is `__proto__`). */
function decodeKey(literal: string): string {
  try {
    return JSON.parse(literal) as string;
  } catch {
    return literal.slice(1, -1);
  }
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) starts.push(i + 1);
  }
  return starts;
}
