import type { CatalogColumn } from '../structure/table-catalog.js';

/**
 * A JavaScript value as PostgreSQL input text for `column`, or `null` for SQL NULL. Rows are sent as text and
 * cast to the column type in SQL, so one conversion serves every type: json/jsonb values are always
 * JSON-encoded (a string becomes a JSON string), arrays become array literals, dates ISO 8601 text and
 * buffers `\x` hex.
 *
 * @example
 * toPostgresText({ a: 1 }, jsonbColumn) // '{"a":1}'
 * toPostgresText(['a', null], textArrayColumn) // '{"a",NULL}'
 */
export function toPostgresText(value: unknown, column: CatalogColumn): string | null {
  if (value === null || value === undefined) return null;
  const json = isJsonType(column.isArray ? column.elementType : column.type);
  if (column.isArray && Array.isArray(value)) return arrayLiteral(value, json);
  return json ? JSON.stringify(value) : scalarText(value);
}

/**
 * Why `value` cannot be given to `column`, or `undefined` when it can: a JSON object or array (a plain object
 * or an array, as seed files and factories write them) only fits json/jsonb columns, or an array column for an
 * array of its elements. Anything else would be stored as JSON text without a word. Domains of the "user"
 * category (such as a domain over jsonb) take any value, as before; composite, range and other types take
 * their PostgreSQL text literal as a string.
 *
 * @example
 * valueMismatch({ a: 1 }, textColumn) // 'text; got an object. Give a string, ...'
 */
export function valueMismatch(value: unknown, column: CatalogColumn): string | undefined {
  if (!isJsonShaped(value)) return undefined;
  if (column.isArray) {
    if (!Array.isArray(value)) return `${column.type}; got an object. ${hint(column)}`;
    if (isJsonType(column.elementType)) return undefined;
    const element = firstObjectElement(value);
    return element === undefined
      ? undefined
      : `${column.type}; got an object at [${element}] of the array. ${hint(column)}`;
  }
  if (isJsonType(column.type) || (column.typeKind === 'domain' && column.category === 'user'))
    return undefined;
  return `${column.type}; got ${Array.isArray(value) ? 'an array' : 'an object'}. ${hint(column)}`;
}

/** A plain object or an array: what `JSON.stringify` would have turned into JSON text unasked. */
function isJsonShaped(value: unknown): boolean {
  if (Array.isArray(value)) return true;
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/** The index path of the first plain object in a (possibly nested) array, e.g. `2` or `1][0`. */
function firstObjectElement(values: readonly unknown[]): string | undefined {
  for (let index = 0; index < values.length; index++) {
    const value = values[index];
    if (Array.isArray(value)) {
      const inner = firstObjectElement(value);
      if (inner !== undefined) return `${index}][${inner}`;
    } else if (isJsonShaped(value)) return String(index);
  }
  return undefined;
}

function hint(column: CatalogColumn): string {
  const fits = 'Only json/jsonb columns store objects and arrays as JSON (and array columns take arrays)';
  if (column.typeKind === 'composite')
    return `${fits}: give the composite value as a string in PostgreSQL's row syntax, e.g. "(1,2)".`;
  if (column.typeKind === 'range' || column.typeKind === 'multirange')
    return `${fits}: give the range as a string, e.g. "[1,10)".`;
  if (column.isArray)
    return `${fits}: give an array of ${column.elementType ?? 'its elements'} values, e.g. ["a", "b"].`;
  return `${fits}: give a ${column.type} value (a string, number or boolean), or make the column jsonb if it holds JSON.`;
}

function isJsonType(type: string | null): boolean {
  return type === 'json' || type === 'jsonb';
}

function scalarText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function arrayLiteral(values: readonly unknown[], json: boolean): string {
  const elements = values.map((value) => {
    if (value === null || value === undefined) return 'NULL';
    if (Array.isArray(value) && !json) return arrayLiteral(value, json);
    const text = json ? JSON.stringify(value) : scalarText(value);
    return `"${text.replace(/[\\"]/g, '\\$&')}"`;
  });
  return `{${elements.join(',')}}`;
}
