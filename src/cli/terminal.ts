import { maskSecrets } from '../config/mask-secrets.js';
import { createLogger, type Logger } from '../util/logger.js';

/** A stream the CLI writes to; `process.stdout` and `process.stderr` fit, and so does a test's buffer. */
export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Where the CLI reads and writes; `main` takes one so it can run in-process in tests. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  env: Record<string, string | undefined>;
  cwd: string;
}

/** The outcome of one check or step, as `doctor` and `gc` show it. */
export type Mark = 'pass' | 'fail' | 'warn' | 'info';

const MARKS: Record<Mark, { symbol: string; colour: number }> = {
  pass: { symbol: '✓', colour: 32 },
  fail: { symbol: '✗', colour: 31 },
  warn: { symbol: '!', colour: 33 },
  info: { symbol: '-', colour: 2 },
};

/** How often plain (non-terminal) progress lines may repeat for the same work. */
const PLAIN_STATUS_INTERVAL_MS = 2000;

/**
 * Everything the CLI shows. Results go to stdout (nothing but the JSON document with `--json`); logs and
 * progress go to stderr. On an interactive terminal progress is one line rewritten in place; when stderr is
 * not a terminal, or `CI` is set, it is plain lines, at most one every two seconds. `NO_COLOR` turns colours
 * off. Every line is masked for the configured passwords.
 */
export class Terminal {
  readonly json: boolean;
  readonly debug: boolean;
  /** stderr is a terminal a person watches: progress rewrites one line. */
  readonly interactive: boolean;
  readonly color: boolean;
  readonly #io: CliIo;
  readonly #secrets = new Set<string>();
  /** Debug lines: `--debug`, or the configuration's `debug` once it is resolved. */
  #debugLines: boolean;
  #status = '';
  #lastPlain = new Map<string, number>();

  constructor(io: CliIo, options: { json: boolean; debug: boolean }) {
    this.#io = io;
    this.json = options.json;
    this.debug = options.debug;
    this.#debugLines = options.debug;
    const ci = io.env.CI !== undefined && io.env.CI !== '' && io.env.CI !== 'false' && io.env.CI !== '0';
    this.interactive = io.stderr.isTTY === true && !ci;
    this.color = io.stdout.isTTY === true && !ci && (io.env.NO_COLOR ?? '') === '';
  }

  /** Shows debug lines from now on when the resolved configuration's `debug` is on (`PGTWIN_DEBUG=1`). */
  useConfig(config: { debug: boolean }): void {
    this.#debugLines ||= config.debug;
  }

  /** Passwords to hide in every line from now on. */
  addSecrets(secrets: Iterable<string | undefined>): void {
    for (const secret of secrets) if (secret) this.#secrets.add(secret);
  }

  mask(text: string): string {
    return maskSecrets(text, this.#secrets);
  }

  /** A result line on stdout; dropped with `--json`, whose document carries the result. */
  print(line = ''): void {
    if (this.json) return;
    this.#clearStatus();
    this.#io.stdout.write(`${this.mask(line)}\n`);
  }

  /** The one JSON document of `--json`. */
  printJson(document: unknown): void {
    this.#clearStatus();
    this.#io.stdout.write(`${this.mask(JSON.stringify(document, jsonValue, 2))}\n`);
  }

  /** A log line on stderr. */
  log(line: string): void {
    this.#clearStatus();
    this.#io.stderr.write(`${this.mask(line)}\n`);
  }

  /**
   * Progress of long work: rewrites the status line on a terminal; elsewhere logs `text` as a plain line,
   * at most every two seconds per `key` (pass the same key for updates of the same work).
   */
  status(text: string, key = text): void {
    if (this.interactive) {
      const width = Math.max(20, (this.#io.stderr.columns ?? 100) - 1);
      const line = this.mask(text).slice(0, width);
      this.#io.stderr.write(`\r\u001b[2K${line}`);
      this.#status = line;
      return;
    }
    const now = Date.now();
    const last = this.#lastPlain.get(key);
    if (last !== undefined && now - last < PLAIN_STATUS_INTERVAL_MS) return;
    this.#lastPlain.set(key, now);
    this.log(text);
  }

  /** Removes the status line (terminal only). */
  endStatus(): void {
    this.#clearStatus();
  }

  /** pgtwin's library logger, writing through this terminal. */
  logger(): Logger {
    const logger = createLogger({ secrets: this.#secrets, debug: true, write: (line) => this.log(line) });
    return {
      ...logger,
      debug: (message) => {
        if (this.#debugLines) logger.debug(message);
      },
    };
  }

  mark(mark: Mark): string {
    const { symbol, colour } = MARKS[mark];
    return this.paint(colour, symbol);
  }

  paint(code: number, text: string): string {
    return this.color ? `\u001b[${code}m${text}\u001b[0m` : text;
  }

  bold(text: string): string {
    return this.paint(1, text);
  }

  #clearStatus(): void {
    if (this.#status === '') return;
    this.#io.stderr.write('\r\u001b[2K');
    this.#status = '';
  }
}

function jsonValue(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** `1234567` → `1,234,567`. Not `toLocaleString`: its first call loads ICU's locale data (~50 ms of CPU mid-copy). */
export function formatCount(count: number): string {
  return String(Math.round(count)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `5400` → `5.4 s`, `420` → `420 ms`. */
export function formatDuration(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
