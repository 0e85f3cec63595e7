import { AsyncResource } from 'node:async_hooks';
import { IsolationError } from '../errors.js';
import { poolInternals } from './pg-internals.js';

type ConnectCallback = (
  error: Error | undefined,
  client?: unknown,
  release?: (error?: unknown) => void,
) => void;
type PoolConnect = (this: object, callback?: ConnectCallback) => Promise<unknown> | undefined;

/**
 * Wraps pg-pool's `connect` so that a test cannot hang on itself: when every client of the pool is
 * checked out by isolated (virtual) clients and none is idle, nothing but the test can release one, so a
 * wait longer than `timeoutMs()` fails with an {@link IsolationError} instead of waiting forever. Pools
 * with `connectionTimeoutMillis` keep their own timeout.
 */
export function guardPoolConnect(
  original: PoolConnect,
  isVirtual: (client: object) => boolean,
  timeoutMs: () => number,
): PoolConnect {
  return function connect(this: object, callback?: ConnectCallback) {
    // pg-pool calls a waiting callback from the code that released a client, maybe another test's: the
    // statements the callback issues (`pool.query`) must belong to the test that asked for the client.
    return connectOrFail(this, callback && AsyncResource.bind(callback));
  };

  function connectOrFail(self: object, callback?: ConnectCallback) {
    // The pg-pool fields that tell whether a `connect()` will have to wait for a release.
    const pool = poolInternals(self);
    const mustWait =
      !pool.ending &&
      !pool.options.connectionTimeoutMillis &&
      pool._idle.length === 0 &&
      pool._clients.length >= pool.options.max &&
      pool._clients.every(isVirtual);
    if (!mustWait) return original.call(self, callback);

    let answer: ConnectCallback = callback ?? (() => undefined);
    const result = callback
      ? undefined
      : new Promise((resolve, reject) => {
          answer = (error, client) => (error ? reject(error) : resolve(client));
        });
    let settled = false;
    const waiter: ConnectCallback = (error, client, release) => {
      if (settled) {
        if (!error) release?.();
        return;
      }
      settled = true;
      clearTimeout(timer);
      answer(error, client, release);
    };
    const wait = timeoutMs();
    const timer = setTimeout(() => {
      settled = true;
      const index = pool._pendingQueue.findIndex((item) => item.callback === waiter);
      if (index !== -1) pool._pendingQueue.splice(index, 1);
      answer(
        new IsolationError(
          'pool-exhausted',
          `A test waited ${wait} ms for a client of a pg Pool whose ${pool.options.max} clients (its max) ` +
            'are all checked out inside the test, so none can be released while it waits: it would hang ' +
            'forever, with or without pgtwin. Release clients (client.release()) before checking out more, ' +
            'raise the pool’s max, or set its connectionTimeoutMillis.',
        ),
      );
    }, wait);
    original.call(self, waiter);
    return result;
  }
}
