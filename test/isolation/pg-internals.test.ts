import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { IsolationError } from 'pgtwin';
import { checkPgInternals } from '../../src/isolation/pg-internals.js';

describe('the node-postgres fields isolation relies on', () => {
  it('are all present in the installed pg', () => {
    expect(() => checkPgInternals(pg, 'installed')).not.toThrow();
  });

  it('fails at startup naming the pg version and the missing field', () => {
    class Client extends pg.Client {
      constructor() {
        super();
        delete (this as unknown as { _queryable?: boolean })._queryable;
      }
    }
    const changed = Object.assign(Object.create(pg) as typeof pg, { Client });
    const error = (() => {
      try {
        checkPgInternals(changed, '9.0.0');
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(IsolationError);
    expect((error as IsolationError).reason).toBe('unsupported-pg');
    expect((error as Error).message).toContain("pgtwin's test isolation does not work with pg 9.0.0");
    expect((error as Error).message).toContain('Client._queryable');
  });
});
