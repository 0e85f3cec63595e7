import type { EventEmitter } from 'node:events';
import pg from 'pg';
import { IsolationError } from '../errors.js';

/*
 * Every field of node-postgres (`pg`) and pg-pool that pgtwin reads or writes without it being public API.
 * Isolation takes over application clients, so it must keep their state the way pg and pg-pool read it; the
 * wire endpoint borrows the session's client as a byte pipe ({@link divertServerMessages}).
 * `checkPgInternals` fails at startup, naming the pg version, when a field read here is missing; the
 * versions noted are where each field appeared (pgtwin supports pg ^8.23.1, which has them all).
 */

/** A `pg.Client`'s state fields. */
export interface ClientInternals {
  /** `connect()` called, the connection not ready yet. pg 6.3 and later. */
  _connecting: boolean;
  /** The connection is ready (reconnecting is refused). pg 6.3 and later. */
  _connected: boolean;
  /** `end()` called. pg 6.3 and later. */
  _ending: boolean;
  /** The 'end' event was emitted. pg 8.10 and later. */
  _ended: boolean;
  /** Queries may still be sent (not ending, no fatal error). pg 7.5 and later. */
  _queryable: boolean;
  /** The client's own type parsers (`types` option, `setTypeParser`). pg 4.1 and later. */
  _types: unknown;
  /** `binary` option: results in binary format. pg 0.6 and later. */
  binary?: boolean;
  /** `Promise` option: the promise class `connect`, `query` and `end` return. pg 7.0 and later. */
  _Promise: PromiseConstructor;
  /** `pipeline` option: queries are sent without waiting for the previous one’s answer. pg 8.23 and later. */
  pipeline: boolean;
  /** The backend's key for cancelling a query. Set after connecting; pg 0.6 and later. */
  processID: number | null;
  /** The backend's key for cancelling a query. Set after connecting; pg 0.6 and later. */
  secretKey: number | null;
  /** Written for a virtual client, as pg sets it when the server is ready; pg-pool's idle logic reads it. */
  readyForQuery: boolean;
  /** The protocol connection. */
  connection: ConnectionInternals;
  /** The settings the client connects with, after defaults and environment. pg 0.11 and later. */
  connectionParameters: {
    host: string;
    port: number | string;
    database: string;
    user: string;
    /** A string, or a function returning one (pg 8.1 and later), or unset. */
    password?: unknown;
    query_timeout?: number;
    /** `ssl` option as given: `true`, TLS options, or unset. */
    ssl?: unknown;
  };
  /** Handles the connection's 'readyForQuery' event: the client becomes idle. pg 8.0 and later. */
  _handleReadyForQuery(message: unknown): void;
  /** The startup parameters the client sends the server (`application_name`, `options`, ...). Every pg 8. */
  getStartupConf(): Record<string, string | undefined>;
}

/**
 * A client's protocol connection (`Client.connection`, every pg 8): an EventEmitter that emits each server
 * message node-pg parsed under the message's name ('readyForQuery', 'parameterStatus', ...), plus 'error',
 * 'end', 'connect', 'sslconnect' and 'drain' of its own.
 */
export interface ConnectionInternals extends EventEmitter {
  /** The socket; node-pg parses what its 'data' event delivers. */
  stream: NodeJS.ReadWriteStream & { destroy(): void; cork(): void; uncork(): void };
  /** The prepared statement names pg believes the server knows, so it skips their Parse. pg 0.2 and later. */
  parsedStatements: Record<string, string>;
}

/** A bare protocol connection (`pg.Connection`, every pg 8), as `Client#cancel` uses one for a CancelRequest. */
export interface ProtocolConnection extends EventEmitter {
  stream: { destroy(): void };
  connect(port: number | string, host?: string): void;
  cancel(processID: number, secretKey: number): void;
}

/** A new protocol connection, not connected; TLS as `ssl` says (a client's `ssl` option). */
export function protocolConnection(ssl: unknown): ProtocolConnection {
  const Connection = (pg as unknown as { Connection: new (config: { ssl?: unknown }) => ProtocolConnection })
    .Connection;
  return new Connection({ ssl });
}

/** A `pg.Pool`'s (pg-pool's) state fields. */
export interface PoolInternals {
  /** `end()` called. pg-pool 2.0 and later. */
  ending: boolean;
  /** The options as given, with defaults (`max` 10). pg-pool 2.0 and later. */
  options: { max: number; connectionTimeoutMillis?: number };
  /** Every client the pool holds, checked out or idle. pg-pool 2.0 and later. */
  _clients: object[];
  /** The idle clients. pg-pool 2.0 and later. */
  _idle: unknown[];
  /** Waiting `connect()` calls, each with its `callback`. pg-pool 2.0 and later. */
  _pendingQueue: Array<{ callback: unknown }>;
}

/** A `pg.Query`'s result under construction, whose parsers come from the client. Every pg 8. */
interface QueryInternals {
  _result?: { _types?: unknown };
}

/** The internal fields of `client`. */
export function clientInternals(client: object): ClientInternals {
  return client as ClientInternals;
}

/** The internal fields of `pool`. */
export function poolInternals(pool: object): PoolInternals {
  return pool as PoolInternals;
}

/**
 * Gives a submittable (`pg.Query`) built outside a client the client's type parsers, as `client.query` does
 * when it submits one itself.
 */
export function adoptClientTypes(submittable: object, client: object): void {
  const result = (submittable as QueryInternals)._result;
  if (result && !result._types) result._types = clientInternals(client)._types;
}

/** Makes `client` prepare its named statements again: the server forgot them (`DEALLOCATE ALL`). */
export function forgetPreparedStatements(client: object): void {
  clientInternals(client).connection.parsedStatements = {};
}

/** `pg.Result`, exported since pg 8.15; `addCommandComplete` records a CommandComplete message (pg 0.2 and later). */
interface ResultInternals {
  new (rowMode?: string): { addCommandComplete(message: { text: string }): void };
}

/** A result for a command completed without rows (`BEGIN`, `RELEASE`), built as pg builds the server's. */
export function commandResult(command: string, rowMode: string | undefined): pg.QueryResult {
  const result = new (pg as unknown as { Result: ResultInternals }).Result(rowMode);
  result.addCommandComplete({ text: command });
  return result as unknown as pg.QueryResult;
}

/**
 * Takes `client`'s socket away from node-pg (as a byte pipe for the wire endpoint): node-pg's parser (the
 * socket's 'data' listener pg-protocol adds) is detached, so server messages are neither parsed nor turned into
 * events, and every chunk the server sends goes to `onData` instead; the socket's own events ('error', 'end')
 * still reach the client. The returned function gives the socket back; with a `status`, the client then
 * becomes idle as if it had just received a ReadyForQuery with that transaction status. Taken between
 * messages (the client idle), so the parser holds no partial message.
 */
export function divertServerMessages(
  client: object,
  onData: (chunk: Buffer) => void,
): (status: string | undefined) => void {
  const connection = clientInternals(client).connection;
  const { stream } = connection;
  const parsers = stream.listeners('data') as Array<(chunk: Buffer) => void>;
  for (const parser of parsers) stream.removeListener('data', parser);
  stream.on('data', onData);
  return (status) => {
    stream.removeListener('data', onData);
    for (const parser of parsers) stream.on('data', parser);
    if (status !== undefined) connection.emit('readyForQuery', { name: 'readyForQuery', length: 5, status });
  };
}

/** Calls `listener` with each ParameterStatus the server sends `client` (at startup and after `SET`). */
export function onParameterStatus(client: object, listener: (name: string, value: string) => void): void {
  clientInternals(client).connection.on(
    'parameterStatus',
    (message: { parameterName: string; parameterValue: string }) =>
      listener(message.parameterName, message.parameterValue),
  );
}

/** Closes `client`'s socket at once, without the protocol's goodbye. */
export function destroySocket(client: object): void {
  clientInternals(client).connection.stream.destroy();
}

const CLIENT_FIELDS: ReadonlyArray<keyof ClientInternals> = [
  '_connecting',
  '_connected',
  '_ending',
  '_ended',
  '_queryable',
  '_types',
  '_Promise',
  'pipeline',
  'processID',
  'secretKey',
  'connection',
  'connectionParameters',
];
const POOL_FIELDS: ReadonlyArray<keyof PoolInternals> = [
  'ending',
  'options',
  '_clients',
  '_idle',
  '_pendingQueue',
];

const checked = new WeakSet<object>();

/**
 * Fails with an {@link IsolationError} naming `version` when this copy of pg lacks a field pgtwin relies on.
 * Builds a client, a pool and a query without connecting.
 */
export function checkPgInternals(copy: typeof pg, version: string): void {
  if (checked.has(copy)) return;
  const client = new copy.Client();
  const pool = new copy.Pool();
  const result = (new copy.Query('SELECT 1') as QueryInternals)._result;
  const missing = [
    ...CLIENT_FIELDS.filter((field) => !(field in client)).map((field) => `Client.${field}`),
    ...POOL_FIELDS.filter((field) => !(field in pool)).map((field) => `Pool.${field}`),
  ];
  const { connection, connectionParameters } = clientInternals(client);
  for (const method of ['emit', 'on'] as const)
    if (typeof connection?.[method] !== 'function') missing.push(`Client.connection.${method}`);
  for (const method of ['destroy', 'on', 'listeners', 'removeListener', 'write', 'cork', 'uncork'] as const)
    if (typeof connection?.stream?.[method] !== 'function')
      missing.push(`Client.connection.stream.${method}`);
  if (typeof connection?.parsedStatements !== 'object') missing.push('Client.connection.parsedStatements');
  for (const field of ['user', 'password'] as const)
    if (!(field in (connectionParameters ?? {}))) missing.push(`Client.connectionParameters.${field}`);
  for (const method of ['_handleReadyForQuery', 'getStartupConf'] as const)
    if (typeof clientInternals(client)[method] !== 'function') missing.push(`Client.${method}`);
  if (!result || !('_types' in result)) missing.push('Query._result._types');
  const Connection = (copy as unknown as { Connection?: { prototype: object } }).Connection;
  if (typeof (Connection?.prototype as { cancel?: unknown } | undefined)?.cancel !== 'function')
    missing.push('Connection.cancel');
  const Result = (copy as unknown as { Result?: unknown }).Result;
  if (typeof Result !== 'function' || !('addCommandComplete' in (Result.prototype as object)))
    missing.push('Result.addCommandComplete');
  if (missing.length === 0) {
    checked.add(copy);
    return;
  }
  throw new IsolationError(
    'unsupported-pg',
    `pgtwin's test isolation does not work with pg ${version}: it lacks ${missing.join(', ')}, which pgtwin ` +
      'keeps up to date for the clients it takes over. Install a pg version in the range pgtwin supports ' +
      '(^8.23.1 in its package.json).',
  );
}
