import { maskSecrets } from '../config/mask-secrets.js';

/** Where pgtwin's lines go; every line is masked before it is written. */
export interface Logger {
  /** One line for a phase or a result. */
  info(message: string): void;
  /** Details, shown when the configuration's `debug` is on (`PGTWIN_DEBUG=1`). */
  debug(message: string): void;
  /** Something the user should look at. */
  warn(message: string): void;
}

export interface LoggerOptions {
  /** Literal secrets to hide besides URL passwords (the configured passwords). */
  secrets?: Iterable<string>;
  /** Show debug lines: the resolved configuration's `debug`. @default false */
  debug?: boolean;
  /** Where lines are written. @default process.stderr */
  write?: (line: string) => void;
}

/**
 * A logger that prefixes `[pgtwin]` and masks passwords in every line.
 *
 * @example
 * const log = createLogger({ secrets: [config.test.password] });
 * log.info('clone 412 ms');
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const secrets = [...(options.secrets ?? [])];
  const debug = options.debug ?? false;
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (prefix: string, message: string) => write(`${prefix} ${maskSecrets(message, secrets)}`);
  return {
    info: (message) => emit('[pgtwin]', message),
    warn: (message) => emit('[pgtwin] warning:', message),
    debug: (message) => {
      if (debug) emit('[pgtwin] debug:', message);
    },
  };
}

/** A logger that writes nothing. */
export const silentLogger: Logger = { info: () => undefined, debug: () => undefined, warn: () => undefined };
