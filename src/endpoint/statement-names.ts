import { CStringCursor, encodeFrame, type Frame } from './frame-reader.js';

/** What a client's message becomes on the shared connection: `frame`, after `reparse` when one is due. */
export interface ServerMessages {
  /** The client's Parse of the statement, sent again because the server forgot it. */
  readonly reparse?: {
    readonly frame: Frame;
    /** To call when the server fails or skips it: the statement is then prepared again at its next use. */
    readonly failed: () => void;
  };
  readonly frame: Frame;
}

interface Statement {
  readonly serverName: string;
  /** The client's last Parse of it, renamed. */
  parse?: Frame;
  /** The {@link StatementNames.rewrite} epoch of that Parse: older ones the server no longer has. */
  epoch: number;
}

/**
 * One endpoint client's prepared statement and portal names on the session connection it shares with other
 * clients. Each client is a session of its own to itself, so two clients naming a statement alike (JDBC's
 * `S_1`, pgx's `stmtcache_…`, node-pg's `name:` on every connection of a pool) must not collide: named
 * statements and portals get names of the client's own (the unnamed ones, replaced by every Parse and Bind,
 * stay unnamed). The server forgets every prepared statement when a test ends (`DEALLOCATE ALL`, so one
 * test's statements do not reach the next) or the connection is replaced, where a client's own session
 * would have kept them: a statement the client uses after that is prepared again, from its last Parse, in
 * the same write.
 */
export class StatementNames {
  private readonly statements = new Map<string, Statement>();
  private readonly portals = new Map<string, string>();
  /** Numbers the server names, never reused: a closed name may still be open on the server. */
  private named = 0;

  /** `prefix` is unique to the client among the endpoint's clients. */
  constructor(private readonly prefix: string) {}

  /**
   * The messages to send for the client's `frame`; `epoch` counts the times the server forgot every
   * prepared statement so far.
   */
  rewrite(frame: Frame, epoch: number): ServerMessages {
    const { bytes } = frame;
    switch (frame.type) {
      case 'P': {
        if (bytes[5] === 0) return { frame };
        const cursor = new CStringCursor(bytes, 5);
        const name = cursor.next();
        const statement = this.statement(name);
        const renamed = renameAt(frame, 5, name, statement.serverName);
        statement.parse = renamed;
        statement.epoch = epoch;
        return { frame: renamed };
      }
      case 'B': {
        if (bytes[5] === 0 && bytes[6] === 0) return { frame };
        const cursor = new CStringCursor(bytes, 5);
        const portal = cursor.next();
        const name = cursor.next();
        const statement = this.known(name);
        const body = Buffer.concat([
          cString(this.portalName(portal)),
          cString(statement?.serverName ?? name),
          bytes.subarray(5 + Buffer.byteLength(portal) + 1 + Buffer.byteLength(name) + 1),
        ]);
        return { reparse: this.reparse(statement, epoch), frame: encodeFrame('B', body) };
      }
      case 'D':
      case 'C': {
        if (bytes[6] === 0) return { frame };
        const name = new CStringCursor(bytes, 6).next();
        if (bytes[5] === 0x50 /* P */) {
          const renamed = renameAt(frame, 6, name, this.portalName(name));
          if (frame.type === 'C') this.portals.delete(name);
          return { frame: renamed };
        }
        const statement = this.known(name);
        if (!statement) return { frame };
        if (frame.type === 'C') {
          this.statements.delete(name);
          return { frame: renameAt(frame, 6, name, statement.serverName) };
        }
        return {
          reparse: this.reparse(statement, epoch),
          frame: renameAt(frame, 6, name, statement.serverName),
        };
      }
      case 'E': {
        if (bytes[5] === 0) return { frame };
        const name = new CStringCursor(bytes, 5).next();
        return { frame: renameAt(frame, 5, name, this.portalName(name)) };
      }
      default:
        return { frame };
    }
  }

  private statement(name: string): Statement {
    let statement = this.statements.get(name);
    if (!statement) {
      statement = { serverName: `${this.prefix}${this.named++}`, epoch: -1 };
      this.statements.set(name, statement);
    }
    return statement;
  }

  private known(name: string): Statement | undefined {
    return name === '' ? undefined : this.statements.get(name);
  }

  private reparse(statement: Statement | undefined, epoch: number): ServerMessages['reparse'] {
    if (!statement?.parse || statement.epoch === epoch) return undefined;
    statement.epoch = epoch;
    return {
      frame: statement.parse,
      failed: () => {
        if (statement.epoch === epoch) statement.epoch = -1;
      },
    };
  }

  private portalName(name: string): string {
    if (name === '') return '';
    let serverName = this.portals.get(name);
    if (serverName === undefined) {
      serverName = `${this.prefix}${this.named++}`;
      this.portals.set(name, serverName);
    }
    return serverName;
  }
}

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

/** `frame` with the name `name` that starts at `offset` replaced by `serverName`. */
function renameAt(frame: Frame, offset: number, name: string, serverName: string): Frame {
  const { bytes } = frame;
  const body = Buffer.concat([
    bytes.subarray(5, offset),
    cString(serverName),
    bytes.subarray(offset + Buffer.byteLength(name) + 1),
  ]);
  return encodeFrame(frame.type, body);
}
