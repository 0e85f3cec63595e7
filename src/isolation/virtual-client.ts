import type pg from 'pg';
import { attachSettings, ClientSettings } from './client-settings.js';
import {
  abandonTransaction,
  abandonSubmittable,
  executeQuery,
  QUERY_READ_TIMEOUT,
  wasSubmitted,
  type QueryRequest,
  type Submittable,
} from './execute-query.js';
import { adoptClientTypes, clientInternals } from './pg-internals.js';
import { checkStartupSettings } from './settings-switch.js';
import type { TestSession } from './test-session.js';

type Callback = (error: Error | null, result?: unknown) => void;

/** A virtual client's queries not yet answered; what its own connection's query queue is to node-pg. */
interface Queries {
  /** Fails one pending query at once (its client ended). */
  readonly pending: Set<(error: Error) => void>;
  /** Aborted when the client ends with queries pending: those not yet run are dropped, a running one cancelled. */
  readonly abort: AbortController;
}

const queriesOf = new WeakMap<object, Queries>();

function queries(client: object): Queries {
  let found = queriesOf.get(client);
  if (!found) queriesOf.set(client, (found = { pending: new Set(), abort: new AbortController() }));
  return found;
}

/**
 * `run`, or the error the client's end fails it with, whichever comes first. `answered`, when given, learns
 * how to mark the query answered before `run` settles (a submittable's ReadyForQuery, whose handlers may end
 * the client: node-pg no longer counts that query as running there).
 */
function track<T>(
  { pending }: Queries,
  run: Promise<T>,
  answered?: (forget: () => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fail = (error: Error) => {
      pending.delete(fail);
      reject(error);
    };
    pending.add(fail);
    answered?.(() => pending.delete(fail));
    run.then(
      (value) => {
        pending.delete(fail);
        resolve(value);
      },
      (error: Error) => fail(error),
    );
  });
}

/** node-pg emits 'drain' when a client's last query has been answered and its callback called. */
function emitDrainWhenIdle(client: pg.Client): void {
  const { pending, abort } = queries(client);
  if (pending.size === 0 && !abort.signal.aborted) client.emit('drain');
}

/** Calls an application callback; if it throws, the error is uncaught, as node-pg rethrows it. */
function callBack(callback: Callback, error: Error | null, result?: unknown): void {
  try {
    callback(error, result);
  } catch (thrown) {
    process.nextTick(() => {
      throw thrown;
    });
  }
}

/** Why node-pg would refuse `query` on `client` now (`Client#query`, pg 8.23), if it would. */
function refusal(client: pg.Client, query: { rows?: unknown }, custom: boolean): Error | undefined {
  const state = clientInternals(client);
  const portalQuery = !state.pipeline
    ? undefined
    : custom
      ? 'Custom query classes such as pg-cursor and pg-query-stream are'
      : query.rows
        ? 'The `rows` option is'
        : undefined;
  if (portalQuery) return new Error(`${portalQuery} not supported in pipeline mode`);
  if (!state._queryable) return new Error('Client has encountered a connection error and is not queryable');
  if (state._ending) return new Error('Client was closed and is not queryable');
  return undefined;
}

/**
 * `connect()` of an application client taken over by a session: no socket of its own; it resolves once the
 * session's connection is open, then emits 'connect', with node-pg's callback and promise styles.
 */
export function connectVirtual(
  client: pg.Client,
  session: TestSession,
  callback?: Callback,
): Promise<pg.Client> | void {
  const state = clientInternals(client);
  let connected: Promise<pg.Client>;
  if (state._connecting || state._connected) {
    connected = Promise.reject(new Error('Client has already been connected. You cannot reuse a client.'));
  } else {
    state._connecting = true;
    connected = Promise.resolve()
      .then(() => session.route())
      .then(async ({ connection, test }) => {
        await connection.connection();
        const settings = ClientSettings.fromStartup(state.getStartupConf());
        // As the server refuses a connection with a bad value (`options: '-c statement_timeout=soon'`). An
        // application_name alone (always there) cannot be refused: no round trip for it.
        if (settings.startup.size > 1)
          await connection.run(test, (real) => checkStartupSettings(real, settings));
        attachSettings(client, settings);
        return connection;
      })
      .then(
        (connection) => {
          state._connecting = false;
          state._connected = true;
          state.readyForQuery = true;
          // Cancelling "this client's" query (Knex's query timeout does) must reach the backend of its test.
          Object.assign(state, connection.backendKey());
          return client;
        },
        (error: unknown) => {
          state._connecting = false;
          throw error;
        },
      );
  }
  if (callback) {
    connected.then(
      () => {
        callback(null, client);
        client.emit('connect');
      },
      (error: Error) => callback(error),
    );
    return;
  }
  return new state._Promise<pg.Client>((resolve, reject) =>
    connected.then(() => {
      client.emit('connect');
      resolve(client);
    }, reject),
  );
}

/** `query()` of a virtual client, with every signature node-pg accepts; runs on the session's connection. */
export function queryVirtual(
  client: pg.Client,
  session: TestSession,
  config: unknown,
  values?: unknown,
  callback?: unknown,
): unknown {
  if (config == null) throw new TypeError('Client was passed a null or undefined query');
  const state = clientInternals(client);
  if (typeof (config as Submittable).submit === 'function') {
    return querySubmittable(client, session, config as Submittable, values, callback);
  }
  const query = cloneQueryConfig(config);
  let done = (typeof values === 'function' ? values : callback) as Callback | undefined;
  if (Array.isArray(values)) query.values = values;
  if (typeof query.callback === 'function') done ??= query.callback as Callback;
  // The real connection must answer with a promise; the result reaches the callback from here.
  delete query.callback;
  query.types ??= state._types as pg.CustomTypesConfig;
  if (state.binary) query.binary = true;
  const timeout = state.connectionParameters.query_timeout;
  if (timeout && query.query_timeout === undefined) query.query_timeout = timeout;
  // Text that is not a string reaches node-pg as it is, which refuses it with its own message.
  const text = typeof query.text === 'string' ? query.text : '';

  const refused = refusal(client, query, false);
  const result = refused
    ? Promise.reject(refused)
    : track(
        queries(client),
        executeQuery(
          session,
          client,
          {
            query,
            text,
            simple: !(
              query.name ||
              query.rows ||
              query.queryMode === 'extended' ||
              (query.values?.length ?? 0) > 0
            ),
            rowMode: query.rowMode,
          },
          queries(client).abort.signal,
        ),
      );
  if (done) {
    const deliver = done;
    result.then(
      (value) => {
        callBack(deliver, null, value);
        emitDrainWhenIdle(client);
      },
      (error: Error) => {
        callBack(deliver, error);
        breakPipelineOnTimeout(client, error);
        emitDrainWhenIdle(client);
      },
    );
    return undefined;
  }
  return new state._Promise((resolve, reject) =>
    result.then(
      (value) => {
        resolve(value);
        emitDrainWhenIdle(client);
      },
      (error: Error) => {
        // As node-pg does: a stack that leads back to the application rather than to the socket.
        Error.captureStackTrace(error);
        reject(error);
        breakPipelineOnTimeout(client, error);
        emitDrainWhenIdle(client);
      },
    ),
  );
}

/** `end()` of a virtual client: rolls back what it left open, then ends as node-pg does ('end' event). */
export function endVirtual(
  client: pg.Client,
  session: TestSession,
  callback?: () => void,
): Promise<void> | void {
  const state = clientInternals(client);
  const wasOpen = state._connected && !state._ending;
  state._ending = true;
  const { pending, abort } = queries(client);
  // As node-pg ends: a pipelined client lets its queries finish, any other fails them (its socket closes).
  const settled =
    pending.size === 0
      ? Promise.resolve()
      : state.pipeline
        ? new Promise<void>((resolve) => client.once('drain', () => resolve()))
        : Promise.resolve(terminate(pending, abort));
  const ended = wasOpen
    ? settled
        .then(() => abandonTransaction(session, client))
        .catch(() => undefined)
        .then(() => {
          state._ended = true;
          process.nextTick(() => client.emit('end'));
        })
    : Promise.resolve();
  if (callback) {
    ended.then(callback);
    return;
  }
  return new state._Promise<void>((resolve) => ended.then(resolve));
}

/** Fails every pending query of an ending client, cancelling the one running, as a closed socket would. */
function terminate(
  pending: Queries['pending'],
  abort: AbortController,
  error = new Error('Connection terminated'),
): void {
  abort.abort(error);
  for (const fail of [...pending]) fail(error);
}

/**
 * A pipelined query that times out has the queries sent behind it waiting on the server, so node-pg
 * destroys the connection to unblock them: they fail, and the client emits 'error' and takes no more.
 */
function breakPipelineOnTimeout(client: pg.Client, error: Error): void {
  const state = clientInternals(client);
  if (!state.pipeline || error.message !== QUERY_READ_TIMEOUT || !state._queryable) return;
  state._queryable = false;
  const lost = new Error('Connection terminated unexpectedly');
  const { pending, abort } = queries(client);
  terminate(pending, abort, lost);
  client.emit('error', lost);
}

/** `getTransactionStatus()` of a virtual client: 'I' idle, 'T' in its transaction, 'E' in a failed one. */
export function transactionStatusOf(client: pg.Client, session: TestSession): 'I' | 'T' | 'E' {
  let route;
  try {
    route = session.route();
  } catch {
    return 'I';
  }
  const { connection, test } = route;
  if (!test || !connection.stack.inTransaction(client)) return 'I';
  return connection.realTransactionStatus() === 'E' ? 'E' : 'T';
}

type QueryConfig = pg.QueryConfig & {
  callback?: unknown;
  rows?: number;
  queryMode?: string;
  binary?: boolean;
  query_timeout?: number;
  rowMode?: string;
};

function querySubmittable(
  client: pg.Client,
  session: TestSession,
  submittable: Submittable,
  values: unknown,
  callback: unknown,
): Submittable {
  if (!submittable.callback) {
    if (typeof values === 'function') submittable.callback = values;
    else if (callback) submittable.callback = callback;
  }
  const state = clientInternals(client);
  adoptClientTypes(submittable, client);
  const request: QueryRequest = {
    query: submittable,
    text: typeof submittable.text === 'string' ? submittable.text : '',
    simple: false,
    rowMode: undefined,
  };
  const refused = refusal(client, submittable as { rows?: unknown }, !isQuery(client, submittable));
  const { abort } = queries(client);
  const run = refused
    ? Promise.reject(refused)
    : track(queries(client), executeQuery(session, client, request, abort.signal), (forget) => {
        const { handleReadyForQuery } = submittable;
        submittable.handleReadyForQuery = function (connection) {
          forget();
          handleReadyForQuery.call(this, connection);
        };
      });
  const failed = (error: Error) => {
    if (abort.signal.aborted) abandonSubmittable(submittable, error, state.connection);
    // Errors from the server already reached the submittable's own handlers; pgtwin's did not.
    else if (!wasSubmitted(submittable)) submittable.handleError(error, state.connection);
  };
  run.then(
    () => emitDrainWhenIdle(client),
    (error: Error) => {
      failed(error);
      emitDrainWhenIdle(client);
    },
  );
  return submittable;
}

/** A `pg.Query` of the client's own copy of pg (`Client.Query`), not a custom submittable such as pg-cursor. */
function isQuery(client: pg.Client, submittable: Submittable): boolean {
  return submittable instanceof (client.constructor as typeof pg.Client & { Query: typeof pg.Query }).Query;
}

/** A copy of a query config that keeps its prototype and getters (e.g. `sql-template-strings`). */
function cloneQueryConfig(config: unknown): QueryConfig {
  if (typeof config === 'string') return { text: config };
  return Object.defineProperties(
    Object.create(Object.getPrototypeOf(config) as object) as QueryConfig,
    Object.getOwnPropertyDescriptors(config),
  );
}
