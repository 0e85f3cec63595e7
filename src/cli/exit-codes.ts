import {
  ConfigError,
  DumpError,
  MirrorPolicyError,
  PgtwinError,
  ProductionGuardError,
  SetupError,
} from '../errors.js';
import { UsageError } from './usage-error.js';

/** The CLI's exit codes; scripts and CI may rely on them. */
export const EXIT = Object.freeze({
  /** The command did what it was asked. */
  ok: 0,
  /** `diff` found drift, a `doctor` check failed, or a snapshot failed its integrity check. */
  failed: 1,
  /** Bad command line or configuration. */
  usage: 2,
  /** The production guard refused a destructive operation; nothing was changed. */
  guard: 3,
  /** A database could not be reached or returned an error. */
  database: 4,
});

/** The exit code for a failure: the production guard anywhere in the cause chain wins, then the root cause decides. */
export function exitCodeFor(error: unknown): number {
  if (causes(error).some((item) => item instanceof ProductionGuardError)) return EXIT.guard;
  const cause = rootCause(error);
  if (cause instanceof UsageError || cause instanceof ConfigError || cause instanceof MirrorPolicyError)
    return EXIT.usage;
  if (cause instanceof DumpError) return EXIT.failed;
  if (cause instanceof PgtwinError) return EXIT.database;
  if (isDriverError(cause)) return EXIT.database;
  return EXIT.failed;
}

/** The error a wrapper (`SetupError`) was raised for; pgtwin's own messages already carry it. */
export function rootCause(error: unknown): unknown {
  let current = error;
  while (current instanceof SetupError && current.cause !== undefined) current = current.cause;
  return current;
}

/** The error and its causes, outermost first. */
export function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  let current = error;
  while (current !== undefined && current !== null && !chain.includes(current)) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

/** A PostgreSQL error (SQLSTATE code and severity) or a socket error from the driver. */
function isDriverError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  if (typeof code !== 'string') return false;
  return (
    (/^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string') ||
    /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|EPIPE)$/.test(code)
  );
}
