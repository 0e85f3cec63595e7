import { skipIgnorable, splitSql } from './sql-splitter.js';

/** What a single statement means for transaction control; everything else is `other`. */
export type StatementClass =
  | { kind: 'begin'; readOnly: boolean | undefined }
  | { kind: 'commit'; chain: boolean }
  | { kind: 'rollback'; chain: boolean }
  | { kind: 'savepoint'; name: string }
  | { kind: 'release'; name: string }
  | { kind: 'rollback-to'; name: string }
  | { kind: 'set-transaction'; readOnly: boolean | undefined }
  | { kind: 'two-phase'; command: 'PREPARE TRANSACTION' | 'COMMIT PREPARED' | 'ROLLBACK PREPARED' }
  | { kind: 'discard-all' }
  | { kind: 'other' };

const OTHER: StatementClass = { kind: 'other' };
const FIRST_WORDS = new Set([
  'begin',
  'start',
  'commit',
  'end',
  'abort',
  'rollback',
  'savepoint',
  'release',
  'prepare',
  'set',
  'discard',
]);

/**
 * Classifies one statement (leading whitespace and comments allowed, trailing `;` allowed) by the
 * PostgreSQL grammar for transaction control. Identifiers are folded to lower case unless double-quoted.
 * Anything that does not parse as transaction control is `other`; the server then judges it.
 *
 * @example
 * classifyStatement('/* knex *\/ ROLLBACK TO SAVEPOINT "trx2"') // { kind: 'rollback-to', name: 'trx2' }
 */
export function classifyStatement(text: string): StatementClass {
  const tokens = new TokenReader(text);
  const first = tokens.word();
  if (first === undefined || !FIRST_WORDS.has(first)) return OTHER;
  switch (first) {
    case 'begin':
      tokens.optional('work', 'transaction');
      return beginWithModes(tokens);
    case 'start':
      return tokens.word() === 'transaction' ? beginWithModes(tokens) : OTHER;
    case 'commit':
    case 'end':
      if (first === 'commit' && tokens.peekWord() === 'prepared') return twoPhase(tokens, 'COMMIT PREPARED');
      return ending(tokens, 'commit');
    case 'abort':
      return ending(tokens, 'rollback');
    case 'rollback': {
      if (tokens.peekWord() === 'prepared') return twoPhase(tokens, 'ROLLBACK PREPARED');
      tokens.optional('work', 'transaction');
      if (tokens.peekWord() !== 'to') return ending(tokens, 'rollback');
      tokens.word();
      tokens.optional('savepoint');
      return named(tokens, 'rollback-to');
    }
    case 'savepoint':
      return named(tokens, 'savepoint');
    case 'release':
      tokens.optional('savepoint');
      return named(tokens, 'release');
    case 'prepare':
      return tokens.peekWord() === 'transaction' ? twoPhase(tokens, 'PREPARE TRANSACTION') : OTHER;
    case 'discard':
      return tokens.word() === 'all' && tokens.atEnd() ? { kind: 'discard-all' } : OTHER;
    case 'set': {
      if (tokens.word() !== 'transaction') return OTHER;
      const readOnly = transactionModes(tokens);
      return readOnly === null ? OTHER : { kind: 'set-transaction', readOnly };
    }
  }
  return OTHER;
}

/** True when the text may contain transaction control somewhere: a cheap filter before splitting. */
export function mayContainTransactionControl(text: string): boolean {
  return /\b(begin|start|commit|end|abort|rollback|savepoint|release|prepare|discard)\b/i.test(text);
}

function beginWithModes(tokens: TokenReader): StatementClass {
  const readOnly = transactionModes(tokens);
  return readOnly === null ? OTHER : { kind: 'begin', readOnly };
}

/** Parses `mode [, mode] ...` to the end; `null` when it is not valid, else the access mode, if given. */
function transactionModes(tokens: TokenReader): boolean | undefined | null {
  let readOnly: boolean | undefined;
  for (;;) {
    const word = tokens.word();
    if (word === undefined) return tokens.atEnd() ? readOnly : null;
    if (word === 'isolation') {
      if (tokens.word() !== 'level') return null;
      const level = tokens.word();
      if (level === 'repeatable' || level === 'read') tokens.word();
      else if (level !== 'serializable') return null;
    } else if (word === 'read') {
      const mode = tokens.word();
      if (mode !== 'only' && mode !== 'write') return null;
      readOnly = mode === 'only';
    } else if (word === 'not') {
      if (tokens.word() !== 'deferrable') return null;
    } else if (word !== 'deferrable') {
      return null;
    }
    tokens.comma();
  }
}

function ending(tokens: TokenReader, kind: 'commit' | 'rollback'): StatementClass {
  tokens.optional('work', 'transaction');
  let chain = false;
  if (tokens.peekWord() === 'and') {
    tokens.word();
    const next = tokens.word();
    chain = next === 'chain';
    if (!chain && (next !== 'no' || tokens.word() !== 'chain')) return OTHER;
  }
  return tokens.atEnd() ? { kind, chain } : OTHER;
}

function named(tokens: TokenReader, kind: 'savepoint' | 'release' | 'rollback-to'): StatementClass {
  const name = tokens.identifier();
  return name !== undefined && tokens.atEnd() ? { kind, name } : OTHER;
}

function twoPhase(
  tokens: TokenReader,
  command: 'PREPARE TRANSACTION' | 'COMMIT PREPARED' | 'ROLLBACK PREPARED',
) {
  tokens.word();
  return { kind: 'two-phase', command } as const;
}

/** Reads words, quoted identifiers and commas, skipping whitespace and comments between them. */
class TokenReader {
  private position = 0;

  constructor(private readonly text: string) {}

  /** The next bare word, lower-cased; `undefined` (consuming nothing) when the next token is not one. */
  word(): string | undefined {
    const start = skipIgnorable(this.text, this.position);
    const match = /^[A-Za-z_][\w$]*/.exec(this.text.slice(start, start + 64));
    if (!match) return undefined;
    this.position = start + match[0].length;
    return match[0].toLowerCase();
  }

  peekWord(): string | undefined {
    const saved = this.position;
    const word = this.word();
    this.position = saved;
    return word;
  }

  /** Consumes the next word if it is one of `words`. */
  optional(...words: string[]): void {
    const next = this.peekWord();
    if (next !== undefined && words.includes(next)) this.word();
  }

  /** A bare (case-folded) or double-quoted (exact) identifier. */
  identifier(): string | undefined {
    const start = skipIgnorable(this.text, this.position);
    if (this.text[start] !== '"') return this.word();
    let name = '';
    let i = start + 1;
    while (i < this.text.length) {
      if (this.text[i] === '"' && this.text[i + 1] === '"') {
        name += '"';
        i += 2;
      } else if (this.text[i] === '"') {
        this.position = i + 1;
        return name;
      } else name += this.text[i++];
    }
    return undefined;
  }

  comma(): void {
    const start = skipIgnorable(this.text, this.position);
    if (this.text[start] === ',') this.position = start + 1;
  }

  /** True when only whitespace, comments and semicolons remain. */
  atEnd(): boolean {
    let i = this.position;
    for (;;) {
      i = skipIgnorable(this.text, i);
      if (this.text[i] !== ';') return i >= this.text.length;
      i++;
    }
  }
}

/**
 * Whether `text` (a simple Query or one statement) makes the server forget every prepared statement of the
 * session: `DEALLOCATE ALL`, or `DISCARD ALL` outside a transaction block.
 */
export function forgetsPreparedStatements(text: string): boolean {
  if (!/deallocate|discard/i.test(text)) return false;
  return splitSql(text).some((statement) =>
    /^(deallocate\s+(prepare\s+)?all|discard\s+all)\s*$/i.test(
      statement.slice(skipIgnorable(statement)).trimEnd(),
    ),
  );
}
