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

  it.each([
    [
      'the socket methods the endpoint writes with',
      'Client.connection.stream.cork',
      (client: pg.Client) => {
        const { stream } = (client as unknown as { connection: { stream: object } }).connection;
        Object.defineProperty(stream, 'cork', { value: undefined });
      },
    ],
    [
      'the server-message events the endpoint diverts',
      'Client.connection.emit',
      (client: pg.Client) => {
        const { connection } = client as unknown as { connection: object };
        Object.defineProperty(connection, 'emit', { value: undefined });
      },
    ],
    [
      'the role the endpoint accepts',
      'Client.connectionParameters.user',
      (client: pg.Client) => {
        delete (client as unknown as { connectionParameters: { user?: string } }).connectionParameters.user;
      },
    ],
  ])('covers %s (%s)', (_what, field, change) => {
    class Client extends pg.Client {
      constructor() {
        super();
        change(this);
      }
    }
    const changed = Object.assign(Object.create(pg) as typeof pg, { Client });
    expect(() => checkPgInternals(changed, '9.0.0')).toThrow(field);
  });
});
