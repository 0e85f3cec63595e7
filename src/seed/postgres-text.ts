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
