import type pg from 'pg';
import { attachSettings, ClientSettings } from './client-settings.js';
import {
  abandonTransaction,
  executeQuery,
  wasSubmitted,
  type QueryRequest,
  type Submittable,
} from './execute-query.js';
import { adoptClientTypes, clientInternals } from './pg-internals.js';
import { checkStartupSettings } from './settings-switch.js';
import type { TestSession } from './test-session.js';

type Callback = (error: Error | null, result?: unknown) => void;

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
  return connected.then(() => {
    client.emit('connect');
    return client;
  });
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

  const result = state._ending
    ? Promise.reject(new Error('Client was closed and is not queryable'))
    : executeQuery(session, client, {
        query,
        text: query.text ?? '',
        simple: !(
          query.name ||
          query.rows ||
          query.queryMode === 'extended' ||
          (query.values?.length ?? 0) > 0
        ),
        rowMode: query.rowMode,
      });
  if (done) {
    const deliver = done;
    result.then(
      (value) => deliver(null, value),
      (error: Error) => deliver(error),
    );
    return undefined;
  }
  return result.catch((error: Error) => {
    // As node-pg does: a stack that leads back to the application rather than to the socket.
    Error.captureStackTrace(error);
    throw error;
  });
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
  const ended = wasOpen
    ? abandonTransaction(session, client)
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
  return ended;
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
    text: submittable.text ?? '',
    simple: false,
    rowMode: undefined,
  };
  const run = state._ending
    ? Promise.reject(new Error('Client was closed and is not queryable'))
    : executeQuery(session, client, request);
  run.catch((error: Error) => {
    // Errors from the server already reached the submittable's own handlers; pgtwin's did not.
    if (!wasSubmitted(submittable)) submittable.handleError(error, state.connection);
  });
  return submittable;
}

/** A copy of a query config that keeps its prototype and getters (e.g. `sql-template-strings`). */
function cloneQueryConfig(config: unknown): QueryConfig {
  if (typeof config === 'string') return { text: config };
  return Object.defineProperties(
    Object.create(Object.getPrototypeOf(config) as object) as QueryConfig,
    Object.getOwnPropertyDescriptors(config),
  );
}
