import { IsolationError } from '../errors.js';

interface Waiter {
  readonly owner: object;
  readonly admit: () => void;
  readonly fail: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Lets one application client at a time hold a transaction on a shared connection. Its frames then lie
 * alone on the savepoint stack, so rolling it back undoes its own work only. Another client's BEGIN waits
 * for the transaction to end, as a second writer waits for a lock on a real server; a wait longer than
 * the wait timeout fails, since the holder then waits on the waiter: a deadlock inside one test.
 */
export class TransactionGate {
  private holder: object | undefined;
  private readonly waiters: Waiter[] = [];

  constructor(private readonly waitTimeoutMs: number) {}

  /** Resolves once `owner` holds the gate (at once when it already does or nobody does). */
  enter(owner: object, test: string | undefined): Promise<void> {
    if (this.holder === undefined || this.holder === owner) {
      this.holder = owner;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        owner,
        admit: resolve,
        fail: reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(
            new IsolationError(
              'transaction-wait',
              `A transaction waited ${this.waitTimeoutMs} ms for another connection's transaction ` +
                `${test ? `in test "${test}" ` : ''}to end. Inside a test the application's connections ` +
                'share one, so their transactions take turns; here the first one waits on the second ' +
                '(a query awaited inside a transaction on another connection that itself opens one). Commit ' +
                'or roll back the first before starting the second, raise `waitTimeoutMs`, or give this ' +
                'test a real database with pgtwin.isolation(false).',
              { test },
            ),
          );
        }, this.waitTimeoutMs),
      };
      waiter.timer.unref();
      this.waiters.push(waiter);
    });
  }

  /** `owner` has no transaction open any more: the next waiter, if any, may begin its own. */
  leave(owner: object): void {
    if (this.holder !== owner) return;
    const next = this.waiters.shift();
    this.holder = next?.owner;
    if (next) {
      clearTimeout(next.timer);
      next.admit();
    }
  }

  /** Whether `owner` holds the gate. */
  holds(owner: object): boolean {
    return this.holder === owner;
  }

  /** The test ended: nobody holds the gate, and transactions still waiting fail. */
  reset(test: string | undefined): void {
    this.holder = undefined;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.fail(
        new IsolationError(
          'test-ended',
          'This transaction was begun by a test that has ended; it was not run.',
          {
            test,
          },
        ),
      );
    }
  }
}
