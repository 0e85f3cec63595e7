import { SetupError } from '../errors.js';
import type { Logger } from '../util/logger.js';

/** The phases of the global setup, in the order they run; `clone`, `sync` and `seed` only build a template. */
export type SetupPhaseName = 'config' | 'provision' | 'clone' | 'sync' | 'seed' | 'template' | 'workers';

/** How long one phase took and what it did, e.g. `{ name: 'clone', ms: 412, detail: '126 objects' }`. */
export interface PhaseTiming {
  readonly name: SetupPhaseName;
  /** Time of the phase itself, without the phases run inside it. */
  readonly ms: number;
  readonly detail: string | undefined;
}

/** Sets the detail of a phase's line: after the time (`seed 12 ms (3 rows)`), or as its lead (`template x reused 40 ms`). */
export type PhaseNote = (detail: string, placement?: 'after' | 'lead') => void;

/**
 * Runs one phase: logs `[pgtwin] <phase> <ms> ms (<detail>)` when it succeeds, and turns a failure into a
 * {@link SetupError} naming the phase, so the runner shows one line saying where and what to change. A phase
 * run inside another (a template build's clone, sync and seed) logs its own line; the outer one counts only
 * its own time, so the phases' times add up to the setup's.
 */
export async function runPhase<T>(
  name: SetupPhaseName,
  context: { logger: Logger; phases: PhaseTiming[] },
  fn: (note: PhaseNote) => Promise<T>,
): Promise<T> {
  const started = performance.now();
  const before = context.phases.length;
  let detail: string | undefined;
  let lead = false;
  try {
    const result = await fn((text, placement = 'after') => {
      detail = text;
      lead = placement === 'lead';
    });
    const nested = context.phases.slice(before).reduce((sum, phase) => sum + phase.ms, 0);
    const ms = Math.max(0, Math.round(performance.now() - started - nested));
    context.phases.push({ name, ms, detail });
    context.logger.info(
      lead && detail ? `${name} ${detail} ${ms} ms` : `${name} ${ms} ms${detail ? ` (${detail})` : ''}`,
    );
    return result;
  } catch (error) {
    if (error instanceof SetupError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new SetupError(name, `pgtwin setup failed in phase "${name}": ${message}`, { cause: error });
  }
}
