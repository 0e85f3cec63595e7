import { PgtwinError } from '../errors.js';

/**
 * The error to hand a test runner for a failed setup. pgtwin's own errors already say what to change, and
 * runners print an error's stack, cause chain and fields; so the runner gets the message alone, as an
 * error with no stack frames, cause or fields. With `PGTWIN_DEBUG=1` it gets the original error.
 */
export function runnerError(error: unknown): unknown {
  if (!(error instanceof PgtwinError) || process.env.PGTWIN_DEBUG === '1') return error;
  const plain = new Error(error.message);
  Object.defineProperty(plain, 'name', { value: error.name, enumerable: false });
  Object.defineProperty(plain, 'stack', { value: `${error.name}: ${error.message}`, enumerable: false });
  return plain;
}
