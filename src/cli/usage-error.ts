import { PgtwinError } from '../errors.js';

/** The command line is wrong: an unknown command or option, a missing argument. Exit code 2. */
export class UsageError extends PgtwinError {
  /** The command whose help explains the fix, if any. */
  readonly command: string | undefined;

  constructor(message: string, command?: string) {
    super('PGTWIN_USAGE', message);
    this.command = command;
  }
}
