/** One savepoint pgtwin holds on the test connection for an application transaction or savepoint. */
interface Frame {
  /** The savepoint's real name on the server. */
  readonly name: string;
  /** The virtual client whose transaction it belongs to. */
  readonly owner: object;
  readonly kind: 'transaction' | 'savepoint';
  /** The application's name for a savepoint, case-folded as the server does. */
  readonly label?: string;
  /** False once the application committed or released it but it still waits under another client's frames. */
  open: boolean;
  /** Whether another client wrote while this was the innermost savepoint: rolling it back would undo that. */
  foreignWork?: boolean;
}

/** A copy of the stack's state, to restore when a statement sent with a plan fails. */
export interface StackSnapshot {
  readonly frames: readonly Frame[];
  readonly open: readonly boolean[];
  readonly statementSavepoint: boolean;
}

/** The savepoint wrapped around each statement sent outside an application transaction. */
export const STATEMENT_SAVEPOINT = 'pgtwin_stmt';
const BEGIN_STATEMENT = `SAVEPOINT ${STATEMENT_SAVEPOINT}`;
const RELEASE_STATEMENT = `RELEASE SAVEPOINT ${STATEMENT_SAVEPOINT}`;

/**
 * The application's transactions and savepoints, mapped onto one linear stack of real savepoints inside the
 * test transaction. Several virtual clients share the connection, so their frames may interleave; a commit
 * whose frame lies under another client's open frame is deferred until that frame is gone. Methods return
 * the SQL to send (possibly nothing).
 */
export class TransactionStack {
  private frames: Frame[] = [];
  private counter = 0;
  /** Whether a {@link STATEMENT_SAVEPOINT} from an earlier statement is still open on top of the stack. */
  private statementSavepoint = false;
  /** How many rollbacks the stack has produced: each may restore settings older than the last statement's. */
  rollbacks = 0;

  /** Whether `owner` has an application transaction open. */
  inTransaction(owner: object): boolean {
    return this.frames.some((frame) => frame.owner === owner && frame.open);
  }

  /**
   * The statements that wrap the next top-level statement in a fresh statement savepoint, releasing the last
   * one (separate, so the endpoint can send each through the extended protocol).
   */
  beginStatement(): string[] {
    const release = this.statementSavepoint ? [RELEASE_STATEMENT] : [];
    this.statementSavepoint = true;
    return [...release, BEGIN_STATEMENT];
  }

  /** SQL that undoes a failed top-level statement; the savepoint stays open for the next one to release. */
  failStatement(): string {
    this.rollbacks++;
    return `ROLLBACK TO SAVEPOINT ${STATEMENT_SAVEPOINT}`;
  }

  /**
   * Records that `owner` wrote. On one connection the write lands inside every savepoint open, whoever
   * owns it; a later rollback of another client's savepoint must not silently undo it.
   */
  noteWrite(owner: object): void {
    for (const frame of this.frames) if (frame.owner !== owner) frame.foreignWork = true;
  }

  /** Opens an application transaction (`kind: 'transaction'`) or savepoint for `owner`. */
  push(owner: object, kind: Frame['kind'], label?: string): string {
    const name = kind === 'transaction' ? `pgtwin_tx_${++this.counter}` : `pgtwin_sp_${++this.counter}`;
    this.frames.push({ name, owner, kind, label, open: true });
    return `${this.takeStatementRelease()}SAVEPOINT ${name}`;
  }

  /** Commits `owner`'s transaction. */
  commit(owner: object): string {
    return this.close(owner, this.transactionIndex(owner));
  }

  /** Rolls back `owner`'s transaction; see {@link rollbackUndoesOthers} for what that may undo. */
  rollback(owner: object): string {
    const index = this.transactionIndex(owner);
    const frame = this.frames[index]!;
    this.frames.length = index;
    this.statementSavepoint = false;
    this.rollbacks++;
    return join(`ROLLBACK TO SAVEPOINT ${frame.name}`, `RELEASE SAVEPOINT ${frame.name}`, this.collapse());
  }

  /**
   * Whether rolling back `owner`'s transaction (or, with `label`, to its savepoint) would also undo work of
   * another client: a frame of another client above it, or another client's write inside it.
   */
  rollbackUndoesOthers(owner: object, label?: string): boolean {
    const index = label === undefined ? this.transactionIndex(owner) : this.savepointIndex(owner, label);
    if (index === -1) return false;
    return this.frames.slice(index).some((frame) => frame.owner !== owner || frame.foreignWork);
  }

  /** Releases `owner`'s savepoint `label`; `undefined` when it has none of that name. */
  release(owner: object, label: string): string | undefined {
    const index = this.savepointIndex(owner, label);
    return index === -1 ? undefined : this.close(owner, index);
  }

  /** Rolls back to `owner`'s savepoint `label`, which stays open; `undefined` when it has none of that name. */
  rollbackTo(owner: object, label: string): string | undefined {
    const index = this.savepointIndex(owner, label);
    if (index === -1) return undefined;
    this.frames.length = index + 1;
    this.statementSavepoint = false;
    this.rollbacks++;
    return `ROLLBACK TO SAVEPOINT ${this.frames[index]!.name}`;
  }

  snapshot(): StackSnapshot {
    return {
      frames: [...this.frames],
      open: this.frames.map((frame) => frame.open),
      statementSavepoint: this.statementSavepoint,
    };
  }

  restore(snapshot: StackSnapshot): void {
    this.frames = [...snapshot.frames];
    this.frames.forEach((frame, i) => (frame.open = snapshot.open[i]!));
    this.statementSavepoint = snapshot.statementSavepoint;
  }

  /** Empties the stack: the test transaction ended. */
  reset(): void {
    this.frames = [];
    this.statementSavepoint = false;
  }

  private close(owner: object, index: number): string {
    for (let i = index; i < this.frames.length; i++) {
      if (this.frames[i]!.owner === owner) this.frames[i]!.open = false;
    }
    return this.collapse();
  }

  /** Releases the closed frames on top of the stack: a RELEASE of the lowest releases all above it. */
  private collapse(): string {
    let top = this.frames.length;
    while (top > 0 && !this.frames[top - 1]!.open) top--;
    if (top === this.frames.length) return '';
    const name = this.frames[top]!.name;
    this.frames.length = top;
    this.statementSavepoint = false;
    return `RELEASE SAVEPOINT ${name}`;
  }

  private takeStatementRelease(): string {
    if (!this.statementSavepoint) return '';
    this.statementSavepoint = false;
    return `RELEASE SAVEPOINT ${STATEMENT_SAVEPOINT}; `;
  }

  private transactionIndex(owner: object): number {
    const index = this.frames.findIndex((frame) => frame.owner === owner && frame.open);
    if (index === -1) throw new Error('pgtwin internal error: no open transaction for this client');
    return index;
  }

  private savepointIndex(owner: object, label: string): number {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const frame = this.frames[i]!;
      if (frame.owner === owner && frame.open && frame.kind === 'savepoint' && frame.label === label)
        return i;
    }
    return -1;
  }
}

function join(...parts: string[]): string {
  return parts.filter((part) => part !== '').join('; ');
}
