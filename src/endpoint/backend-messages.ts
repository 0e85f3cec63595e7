import type pg from 'pg';
import { encodeFrame } from './frame-reader.js';

/** The messages the endpoint writes itself, encoded as the server encodes them. */

function message(type: string, ...parts: Buffer[]): Buffer {
  return encodeFrame(type, Buffer.concat(parts)).bytes;
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function int16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeInt16BE(value);
  return buffer;
}

function cstring(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

export const authenticationOk = (): Buffer => message('R', int32(0));

/** AuthenticationSASL: the mechanisms offered, each a string, then an empty one. */
export const authenticationSasl = (mechanisms: readonly string[]): Buffer =>
  message('R', int32(10), ...mechanisms.map(cstring), Buffer.alloc(1));

export const authenticationSaslContinue = (data: string): Buffer =>
  message('R', int32(11), Buffer.from(data, 'utf8'));

export const authenticationSaslFinal = (data: string): Buffer =>
  message('R', int32(12), Buffer.from(data, 'utf8'));

export const parameterStatus = (name: string, value: string): Buffer =>
  message('S', cstring(name), cstring(value));

export const backendKeyData = (processId: number, secretKey: number): Buffer =>
  message('K', int32(processId), int32(secretKey));

/** ReadyForQuery for each transaction status, encoded once: the endpoint sends one per exchange. */
const READY_FOR_QUERY = new Map(['I', 'T', 'E'].map((status) => [status, message('Z', Buffer.from(status))]));

export const readyForQuery = (status: string): Buffer =>
  READY_FOR_QUERY.get(status) ?? message('Z', Buffer.from(status, 'latin1'));

export const commandComplete = (tag: string): Buffer => message('C', cstring(tag));

export const emptyQueryResponse = (): Buffer => message('I');

/** The fields of an ErrorResponse or NoticeResponse, keyed by the protocol's one-letter codes. */
export type ReportFields = Partial<Record<string, string>>;

const FIELD_CODES: Array<[code: string, key: keyof pg.DatabaseError | 'message']> = [
  ['S', 'severity'],
  ['C', 'code'],
  ['M', 'message'],
  ['D', 'detail'],
  ['H', 'hint'],
  ['P', 'position'],
  ['p', 'internalPosition'],
  ['q', 'internalQuery'],
  ['W', 'where'],
  ['s', 'schema'],
  ['t', 'table'],
  ['c', 'column'],
  ['d', 'dataType'],
  ['n', 'constraint'],
  ['F', 'file'],
  ['L', 'line'],
  ['R', 'routine'],
];

/** The protocol fields of an error or notice as node-pg (or pgtwin) reports it. */
export function reportFields(error: unknown, fallbackCode: string): ReportFields {
  const source = error as Record<string, unknown>;
  const fields: ReportFields = {};
  for (const [code, key] of FIELD_CODES) {
    const value = source[key];
    if (typeof value === 'string' && value !== '') fields[code] = value;
  }
  fields.S ??= 'ERROR';
  fields.V ??= fields.S;
  // pgtwin's own errors carry a PGTWIN_* code, which is no SQLSTATE.
  if (!/^[0-9A-Z]{5}$/.test(fields.C ?? '')) fields.C = fallbackCode;
  fields.M ??= String(error);
  return fields;
}

export const errorResponse = (fields: ReportFields): Buffer => report('E', fields);

export const noticeResponse = (fields: ReportFields): Buffer => report('N', fields);

function report(type: string, fields: ReportFields): Buffer {
  const parts = Object.entries(fields).map(([code, value]) => cstring(`${code}${value}`));
  return message(type, ...parts, Buffer.alloc(1));
}

/** RowDescription for fields as node-pg reports them. */
export function rowDescription(fields: readonly pg.FieldDef[]): Buffer {
  return message(
    'T',
    int16(fields.length),
    ...fields.map((field) =>
      Buffer.concat([
        cstring(field.name),
        int32(field.tableID),
        int16(field.columnID),
        int32(field.dataTypeID),
        int16(field.dataTypeSize),
        int32(field.dataTypeModifier),
        int16(field.format === 'binary' ? 1 : 0),
      ]),
    ),
  );
}

/** DataRow for values in the text format, `null` for NULL. */
export function dataRow(values: ReadonlyArray<string | null>): Buffer {
  return message(
    'D',
    int16(values.length),
    ...values.map((value) => {
      if (value === null) return int32(-1);
      const bytes = Buffer.from(value, 'utf8');
      return Buffer.concat([int32(bytes.length), bytes]);
    }),
  );
}
