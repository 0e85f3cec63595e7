import pg from 'pg';
import type { ClientSettings } from './client-settings.js';
import { settingsTouchedBy } from './settings-touched.js';

/** SQL of pgtwin's to send with a statement, and what to do with the settings it reads back. */
export interface SettingsPlan {
  readonly sql: string;
  /**
   * Takes the rows of the captures in the SQL sent (with any other plan's): (parameter, value, whose), the
   * parameter under the column {@link CAPTURE_COLUMN}.
   */
  absorb(rows: ReadonlyArray<CaptureRow>): void;
}

/** The first column of the rows a {@link SettingsPlan} reads back, which tells them from other results. */
export const CAPTURE_COLUMN = 'pgtwin_setting';

/** A parameter's value read back: (parameter, value or null when unknown, which capture read it). */
export type CaptureRow = readonly [string, string | null, string];

/** A value that is the session's own: what the connection had when the test began. */
const SESSION = Symbol('session');
/** A value not known without asking the server. */
const UNKNOWN = Symbol('unknown');

/** Parameters that must be set before the others: setting the session user resets the role. */
const FIRST = ['session_authorization', 'role'];

/**
 * Keeps the run-time parameters of one shared connection those of the application client whose statement
 * runs, inside a test. Every client starts each test with its startup values and keeps its own `SET`s; when
 * the connection passes from one client to another, {@link enter} returns SQL that reads back the parameters
 * the last client may have changed and sets the next client's, sent in the same write as the statement.
 * Everything is set at session level inside the test transaction, so the test's rollback restores the
 * connection's own values; a savepoint rolled back restores the values it began with, which were those of
 * the client that opened it (the switch is sent before the savepoint).
 *
 * Statements outside tests run with the connection's settings as they are; a `SET` among them changes what
 * every client that did not set the parameter itself sees in later tests ({@link noteOutside}).
 */
export class SettingsSwitch {
  /** The client whose values the connection holds in this test; `undefined`: the connection's own. */
  private owner: ClientSettings | undefined;
  /** A switch failed: which values the connection holds is not known. */
  private unknown = false;
  /** Parameters a client has (or may have) given its own value in this test. */
  private readonly names = new Set<string>();
  /** Session values of parameters `SET` outside tests; others are the server's reset values. */
  private readonly baseline = new Map<string, string>();
  /** Parameters changed outside tests since {@link baseline} was read. */
  private readonly outsideDirty = new Set<string>();
  private testId: number | undefined;
  private rollbacks = 0;

  /**
   * The SQL to send before `client`'s statement in test `testId`, after pgtwin's `BEGIN` and before the
   * statement's savepoint; `undefined` when the connection already holds its values. `rollbacks` counts the
   * rollbacks the connection's transaction stack has sent (any may have restored older values); `aborted`:
   * the connection's transaction has failed, so nothing can be sent until a rollback.
   */
  enter(
    client: ClientSettings,
    testId: number,
    rollbacks: number,
    aborted: boolean,
  ): SettingsPlan | undefined {
    if (this.testId !== testId) {
      this.endTest();
      this.testId = testId;
    }
    // A client that ran in another (concurrent) test meanwhile starts this one afresh, on a connection
    // that may still hold its values from before: all of them are set again.
    if (client.enterTest(testId) && this.owner === client) this.unknown = true;
    if (rollbacks !== this.rollbacks) {
      this.rollbacks = rollbacks;
      if (this.owner) this.owner.stale = true;
    }
    if (aborted || (this.owner === client && !this.unknown)) return undefined;
    for (const name of client.startup.keys()) this.names.add(name);
    // The last client has moved on to another (concurrent) test: its values here are no longer known.
    if (this.owner && this.owner.testId !== testId) this.unknown = true;
    const from = this.owner;
    const capture =
      from && !this.unknown ? [...(from.stale ? union(this.names, from.dirty) : from.dirty)] : [];
    const current = (name: string): string | symbol => {
      if (this.unknown) return UNKNOWN;
      if (!from) return SESSION;
      if (from.stale || from.dirty.has(name)) return UNKNOWN;
      return from.values.get(name) ?? SESSION;
    };
    const changes: Array<[string, string | symbol]> = [];
    for (const name of this.names) {
      const wanted = client.values.get(name) ?? SESSION;
      if (current(name) !== wanted) changes.push([name, wanted]);
    }
    if (from && capture.length > 0) {
      from.dirty.clear();
      from.stale = false;
    }
    this.owner = client;
    this.unknown = false;
    if (capture.length === 0 && changes.length === 0) return undefined;
    const statements = capture.length > 0 ? [captureSql(capture, 'switch')] : [];
    statements.push(...this.setSql(changes));
    return {
      sql: statements.join('; '),
      absorb: (rows) => {
        if (from) absorbInto(from.values, rows, 'switch');
      },
    };
  }

  /**
   * Records that `client` (`undefined`: a statement outside tests) sends `text`, which may change settings;
   * `inTransaction`: inside its application transaction.
   */
  note(client: ClientSettings | undefined, text: string, inTransaction = false): void {
    const touched = settingsTouchedBy(text);
    if (touched.names.size === 0 && !touched.all) return;
    if (!client) {
      for (const name of touched.all ? this.baseline.keys() : touched.names) this.outsideDirty.add(name);
      for (const name of touched.names) this.outsideDirty.add(name);
      return;
    }
    const names = touched.all
      ? union(union(this.names, this.baseline.keys()), client.startup.keys())
      : touched.names;
    for (const name of names) {
      client.dirty.add(name);
      this.names.add(name);
    }
    for (const name of touched.all ? client.startup.keys() : touched.reset)
      if (client.startup.has(name)) client.reapply.add(name);
    if (inTransaction) for (const name of touched.local) client.local.add(name);
  }

  /**
   * `client` (whose values the connection holds) begins an application transaction: the SQL to send with
   * its savepoint, reading back the values its `SET LOCAL`s will return to at its COMMIT.
   */
  beginTransaction(client: ClientSettings): SettingsPlan | undefined {
    client.local.clear();
    const names = [...(client.stale ? union(this.names, client.dirty) : client.dirty)];
    client.dirty.clear();
    client.stale = false;
    if (names.length === 0) {
      client.atBegin = new Map(client.values);
      return undefined;
    }
    return {
      sql: captureSql(names, 'begin'),
      absorb: (rows) => {
        absorbInto(client.values, rows, 'begin');
        client.atBegin = new Map(client.values);
      },
    };
  }

  /**
   * `client` commits its application transaction: SQL returning what it `SET LOCAL` to the values of its
   * `BEGIN`, as the server's COMMIT does (a savepoint's release keeps them), or `''`.
   */
  commitTransaction(client: ClientSettings): string {
    const atBegin = client.atBegin;
    const names = [...client.local];
    this.endTransaction(client);
    if (!atBegin || names.length === 0) return '';
    const changes: Array<[string, string | symbol]> = names.map((name) => {
      const value = atBegin.get(name);
      if (value === undefined) client.values.delete(name);
      else client.values.set(name, value);
      client.dirty.delete(name);
      return [name, value ?? SESSION];
    });
    return this.setSql(changes).join('; ');
  }

  /** `client`'s application transaction ended (a rollback restores its settings by itself). */
  endTransaction(client: ClientSettings): void {
    client.local.clear();
    client.atBegin = undefined;
  }

  /**
   * SQL to send after `client`'s statement (still its own, in the same exchange), or `''`: a `RESET` of a
   * parameter it gave at startup returns it to that value, as on the server, not to the connection's.
   */
  after(client: ClientSettings): string {
    if (client.reapply.size === 0 || this.owner !== client) return '';
    const changes: Array<[string, string]> = [];
    for (const name of client.reapply) {
      const value = client.startup.get(name)!;
      client.values.set(name, value);
      changes.push([name, value]);
    }
    client.reapply.clear();
    return this.setSql(changes).join('; ');
  }

  /** A switch was sent but failed: the connection's values are unknown until the next switch sets them all. */
  lost(): void {
    if (this.owner) this.owner.stale = true;
    this.owner = undefined;
    this.unknown = true;
  }

  /**
   * SQL reading back the parameters statements outside tests set, so that clients that did not set them
   * get them back after another client's value; `undefined` when there are none.
   */
  outsideCapture(): SettingsPlan | undefined {
    if (this.outsideDirty.size === 0) return undefined;
    const names = [...this.outsideDirty];
    this.outsideDirty.clear();
    return {
      sql: captureSql(names, 'outside'),
      absorb: (rows) => absorbInto(this.baseline, rows, 'outside'),
    };
  }

  /** The test's transaction was rolled back: the connection holds its own values again. */
  endTest(): void {
    this.owner = undefined;
    this.unknown = false;
    this.names.clear();
    this.testId = undefined;
  }

  /** The connection was opened again: a new session, with the server's values. */
  reconnected(): void {
    this.endTest();
    this.baseline.clear();
    this.outsideDirty.clear();
  }

  /** Statements setting each parameter to a value, or back to the session's. */
  private setSql(changes: Array<[string, string | symbol]>): string[] {
    const order = (name: string) => (FIRST.includes(name) ? FIRST.indexOf(name) : FIRST.length);
    const statements: string[] = [];
    let calls: string[] = [];
    const flush = () => {
      if (calls.length > 0) statements.push(`SELECT ${calls.join(', ')}`);
      calls = [];
    };
    for (const [name, wanted] of [...changes].sort((a, b) => order(a[0]) - order(b[0]))) {
      const value = typeof wanted === 'string' ? wanted : this.baseline.get(name);
      if (value !== undefined) {
        calls.push(`set_config(${pg.escapeLiteral(name)}, ${pg.escapeLiteral(value)}, false)`);
      } else {
        flush();
        statements.push(
          `RESET ${name
            .split('.')
            .map((part) => pg.escapeIdentifier(part))
            .join('.')}`,
        );
      }
    }
    flush();
    return statements;
  }
}

function captureSql(names: string[], whose: string): string {
  const list = names.map((name) => pg.escapeLiteral(name)).join(', ');
  return (
    `SELECT n AS ${CAPTURE_COLUMN}, current_setting(n, true) AS value, '${whose}' AS whose ` +
    `FROM unnest(ARRAY[${list}]::text[]) AS n`
  );
}

function absorbInto(values: Map<string, string>, rows: ReadonlyArray<CaptureRow>, whose: string): void {
  for (const [name, value, reader] of rows) {
    if (reader !== whose) continue;
    if (value === null) values.delete(name);
    else values.set(name, value);
  }
}

function union<T>(a: Iterable<T>, b: Iterable<T>): Set<T> {
  return new Set([...a, ...b]);
}

/**
 * Checks a client's startup values on `real` as the server checks them when a connection starts (a value it
 * rejects fails with the server's error), without changing anything, and returns them as the server spells
 * them (`utc` → `UTC`, `iso` → `ISO, MDY`). Later switches then cannot fail on them.
 */
export async function checkStartupSettings(
  real: pg.Client,
  settings: ClientSettings,
): Promise<Map<string, string>> {
  const status = real.getTransactionStatus();
  // A failed transaction cannot run anything: the values are checked when they are first switched in.
  if (status === 'E' || settings.startup.size === 0) return new Map(settings.startup);
  const [open, close] =
    status === 'I'
      ? ['BEGIN', 'ROLLBACK']
      : ['SAVEPOINT pgtwin_check', 'ROLLBACK TO SAVEPOINT pgtwin_check; RELEASE SAVEPOINT pgtwin_check'];
  const entries = [...settings.startup];
  const calls = entries.map(
    ([name, value]) => `set_config(${pg.escapeLiteral(name)}, ${pg.escapeLiteral(value)}, true)`,
  );
  let results: pg.QueryResult[];
  try {
    results = (await real.query({
      text: `${open}; SELECT ${calls.join(', ')}; ${close}`,
      rowMode: 'array',
    })) as unknown as pg.QueryResult[];
  } catch (error) {
    await real.query(close).catch(() => undefined);
    throw error;
  }
  const row = results[1]!.rows[0] as string[];
  return new Map(entries.map(([name], i) => [name, row[i]!]));
}
