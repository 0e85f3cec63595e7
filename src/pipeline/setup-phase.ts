import { SetupError } from '../errors.js';
import type { Logger } from '../util/logger.js';

/** The phases of the global setup, in the order they run. */
export type SetupPhaseName = 'config' | 'provision' | 'clone' | 'sync' | 'seed' | 'template';

/** How long one phase took and what it did, e.g. `{ name: 'clone', ms: 412, detail: '126 objects' }`. */
export interface PhaseTiming {
  readonly name: SetupPhaseName;
  readonly ms: number;
  readonly detail: string | undefined;
}

/**
 * Runs one phase: logs `[pgtwin] <phase> <ms> ms (<detail>)` when it succeeds, and turns a failure into a
 * {@link SetupError} naming the phase, so the runner shows one line saying where and what to change.
 */
export async function runPhase<T>(
  name: SetupPhaseName,
  context: { logger: Logger; phases: PhaseTiming[] },
  fn: (note: (detail: string) => void) => Promise<T>,
): Promise<T> {
  const started = performance.now();
  let detail: string | undefined;
  try {
    const result = await fn((text) => {
      detail = text;
    });
    const ms = Math.round(performance.now() - started);
    context.phases.push({ name, ms, detail });
    context.logger.info(`${name} ${ms} ms${detail ? ` (${detail})` : ''}`);
    return result;
  } catch (error) {
    if (error instanceof SetupError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new SetupError(name, `pgtwin setup failed in phase "${name}": ${message}`, { cause: error });
  }
}
