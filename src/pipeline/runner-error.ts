import type { ResolveConfigOptions } from '../config/pgtwin-config.js';
import { resolveConfig } from '../config/resolve-config.js';
import { PgtwinError } from '../errors.js';

/**
 * The error to hand a test runner for a failed setup. pgtwin's own errors already say what to change, and
 * runners print an error's stack, cause chain and fields; so the runner gets the message alone, as an
 * error with no stack frames, cause or fields. When the configuration's `debug` is on (`PGTWIN_DEBUG=1`,
 * `.env` included) it gets the original error. `options` are the setup's own (runner keys such as `workers`
 * are left out); when they cannot be resolved, `debug` counts as off.
 */
export async function runnerError(
  error: unknown,
  options: ResolveConfigOptions & { workers?: number },
): Promise<unknown> {
  if (!(error instanceof PgtwinError)) return error;
  const { workers: _workers, ...config } = options;
  // Resolved again only on this failure path: the setup that failed may not have got as far as resolving.
  const debug = await resolveConfig(config).then(
    (resolved) => resolved.debug,
    () => false,
  );
  if (debug) return error;
  const plain = new Error(error.message);
  Object.defineProperty(plain, 'name', { value: error.name, enumerable: false });
  Object.defineProperty(plain, 'stack', { value: `${error.name}: ${error.message}`, enumerable: false });
  return plain;
}
