import { splitSql, skipIgnorable } from './sql-splitter.js';

/** The run-time parameters a statement may change, as {@link settingsTouchedBy} reads them. */
export interface TouchedSettings {
  /** Parameter names (lower case) set or reset by name. */
  readonly names: ReadonlySet<string>;
  /** Of {@link names}, those reset to their session default (`RESET name`). */
  readonly reset: ReadonlySet<string>;
  /** Of {@link names}, those set for the current transaction only (`SET LOCAL`, `set_config(..., true)`). */
  readonly local: ReadonlySet<string>;
  /** `RESET ALL` or `DISCARD ALL`: every parameter back to its session default. */
  readonly all: boolean;
}

const NONE: TouchedSettings = { names: new Set(), reset: new Set(), local: new Set(), all: false };

/** `SET` forms whose parameter is not written as its name. */
const SPECIAL_FORMS: Array<[RegExp, string[]]> = [
  [/^time\s+zone\b/i, ['timezone']],
  [/^schema\b/i, ['search_path']],
  [/^names\b/i, ['client_encoding']],
  [/^role\b/i, ['role']],
  [/^(?:session\s+)?session\s+authorization\b/i, ['session_authorization']],
  [/^xml\s+option\b/i, ['xmloption']],
  [
    /^characteristics\s+as\s+transaction\b/i,
    ['default_transaction_isolation', 'default_transaction_read_only', 'default_transaction_deferrable'],
  ],
];

/**
 * Which run-time parameters `text` (one statement, or several over the simple protocol) may change: the
 * `SET`/`RESET` statements and `set_config` calls in it, and `DISCARD ALL`. A function that sets a parameter
 * inside its body is not seen.
 *
 * @example
 * settingsTouchedBy('SET LOCAL search_path TO app; SELECT 1') // names: {search_path}
 */
export function settingsTouchedBy(text: string): TouchedSettings {
  if (!/\b(?:set|reset|discard|set_config)\b/i.test(text)) return NONE;
  const names = new Set<string>();
  const reset = new Set<string>();
  const local = new Set<string>();
  let all = false;
  // set_config('name', value, is_local): the value may hold quoted commas, not calls.
  const calls = /\bset_config\s*\(\s*'((?:[^']|'')+)'\s*,(?:[^,()']|'(?:[^']|'')*')*,\s*(\w+)/gi;
  for (const match of text.matchAll(calls)) {
    const name = match[1]!.replaceAll("''", "'").toLowerCase();
    names.add(name);
    if (match[2]!.toLowerCase() === 'true') local.add(name);
  }
  for (const match of text.matchAll(/\bset_config\s*\(\s*'((?:[^']|'')+)'/gi))
    names.add(match[1]!.replaceAll("''", "'").toLowerCase());
  for (const statement of text.includes(';') ? splitSql(text) : [text]) {
    const body = statement.slice(skipIgnorable(statement));
    const head = /^(set|reset|discard)\s+/i.exec(body);
    if (!head) continue;
    const verb = head[1]!.toLowerCase();
    let rest = body.slice(head[0].length);
    if (verb === 'discard') {
      if (/^all\b/i.test(rest)) all = true;
      continue;
    }
    if (verb === 'reset' && /^all\b/i.test(rest)) {
      all = true;
      continue;
    }
    const isLocal = verb === 'set' && /^local\s/i.test(rest);
    if (verb === 'set') rest = rest.replace(/^(?:session|local)\s+(?!authorization\b)/i, '');
    if (/^(?:transaction|constraints)\b/i.test(rest)) continue;
    const special = SPECIAL_FORMS.find(([form]) => form.test(rest));
    const touched = special ? special[1] : [parameterName(rest)].filter((name) => name !== '');
    for (const name of touched) {
      names.add(name);
      if (verb === 'reset') reset.add(name);
      if (isLocal) local.add(name);
    }
  }
  return { names, reset, local, all };
}

/** A parameter name as written (`work_mem`, `"MyApp".tenant`), folded as the server compares them. */
function parameterName(text: string): string {
  const parts: string[] = [];
  let rest = text;
  for (;;) {
    const part = /^(?:"((?:[^"]|"")*)"|([A-Za-z_][\w$]*))/.exec(rest);
    if (!part) break;
    parts.push(part[1] !== undefined ? part[1].replaceAll('""', '"') : part[2]!);
    rest = rest.slice(part[0].length);
    if (!rest.startsWith('.')) break;
    rest = rest.slice(1);
  }
  return parts.join('.').toLowerCase();
}
