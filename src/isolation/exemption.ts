/** Marks a client pgtwin opens for itself; `Symbol.for` so every copy of pgtwin in a process agrees. */
const EXEMPT = Symbol.for('pgtwin.isolation.exempt');

/**
 * Exempts `client` from isolation: it connects and commits for real even while isolation is enabled.
 * pgtwin marks its own connections so; use it for a client that must write outside the test transaction.
 *
 * @example
 * const admin = exemptFromIsolation(new pg.Client(url)); // its writes commit, and leak detection reports them
 */
export function exemptFromIsolation<T extends object>(client: T): T {
  Object.defineProperty(client, EXEMPT, { value: true });
  return client;
}

/** Whether `client` was passed to {@link exemptFromIsolation}. */
export function isExempt(client: object): boolean {
  return (client as { [EXEMPT]?: boolean })[EXEMPT] === true;
}
