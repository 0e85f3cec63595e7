/**
 * Splits a simple-protocol query string into its statements the way the server does: semicolons inside
 * quotes ('', E'', "", $tag$ $tag$), comments (`--`, nested `/* *\/`) and `BEGIN ATOMIC ... END` bodies
 * do not separate statements. Empty statements (`;;`, comment-only pieces) are dropped, as the server
 * returns no result for them. Assumes `standard_conforming_strings = on` (the default since PG 9.1).
 *
 * @example
 * splitSql("BEGIN; INSERT INTO t VALUES ('a;b'); COMMIT;") // ['BEGIN', " INSERT INTO t VALUES ('a;b')", ' COMMIT']
 */
export function splitSql(text: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let atomicDepth = 0;
  let previousWord = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ';' && atomicDepth === 0) {
      pushStatement(statements, text.slice(start, i));
      start = i + 1;
      previousWord = '';
      i++;
    } else if (isWordStart(ch)) {
      let end = i + 1;
      while (end < text.length && isWordPart(text[end]!)) end++;
      if (end - i === 1 && (ch === 'e' || ch === 'E') && text[end] === "'") {
        i = skipQuoted(text, end, "'", true);
        continue;
      }
      const word = text.slice(i, end).toLowerCase();
      // SQL-standard function bodies (PG 14+) contain semicolons between BEGIN ATOMIC and END.
      if (word === 'atomic' && previousWord === 'begin') atomicDepth++;
      else if (word === 'case' && atomicDepth > 0) atomicDepth++;
      else if (word === 'end' && atomicDepth > 0) atomicDepth--;
      previousWord = word;
      i = end;
    } else {
      const next = skipNonCode(text, i);
      i = next === i ? i + 1 : next;
    }
  }
  pushStatement(statements, text.slice(start));
  return statements;
}

/** The index of the first character at or after `from` that is neither whitespace nor inside a comment. */
export function skipIgnorable(text: string, from = 0): number {
  let i = from;
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text.startsWith('--', i) || text.startsWith('/*', i)) i = skipComment(text, i);
    else return i;
  }
}

function pushStatement(statements: string[], piece: string): void {
  if (skipIgnorable(piece) < piece.length) statements.push(piece);
}

/** Skips a quoted string, quoted identifier, dollar-quoted string or comment starting at `i`. */
function skipNonCode(text: string, i: number): number {
  const ch = text[i];
  if (ch === "'") return skipQuoted(text, i, "'", false);
  if (ch === '"') return skipQuoted(text, i, '"', false);
  if (ch === '-' || ch === '/') return skipComment(text, i);
  if (ch === '$') {
    const tag = /^\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(text.slice(i, i + 64));
    if (tag) {
      const close = text.indexOf(tag[0], i + tag[0].length);
      return close === -1 ? text.length : close + tag[0].length;
    }
  }
  return i;
}

function skipQuoted(text: string, open: number, quote: string, backslashEscapes: boolean): number {
  let i = open + 1;
  while (i < text.length) {
    const ch = text[i];
    if (backslashEscapes && ch === '\\') i += 2;
    else if (ch === quote && text[i + 1] === quote) i += 2;
    else if (ch === quote) return i + 1;
    else i++;
  }
  return text.length;
}

function skipComment(text: string, i: number): number {
  if (text.startsWith('--', i)) {
    const end = text.indexOf('\n', i);
    return end === -1 ? text.length : end + 1;
  }
  if (!text.startsWith('/*', i)) return i;
  let depth = 0;
  while (i < text.length) {
    if (text.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (text.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return text.length;
}

function isWordStart(ch: string): boolean {
  return /[A-Za-z_\u0080-\uffff]/.test(ch);
}

function isWordPart(ch: string): boolean {
  return /[\w$\u0080-\uffff]/.test(ch);
}
