import { closestName } from '../util/closest-name.js';
import { ENV_NAMES } from './env-names.js';
import type { EnvLayer } from './read-environment.js';

/** Every environment variable pgtwin reads; a near miss of one of them is reported. */
export const KNOWN_VARIABLES: readonly string[] = Object.freeze(
  Object.values(ENV_NAMES).flatMap((entry) => (typeof entry === 'string' ? [entry] : Object.values(entry))),
);

/** Names that look meant for pgtwin: its prefixes, or anything ending like a database URL. */
const PGTWIN_LIKE =
  /^(DB_|TEST_DB|TEST_DATABASE|PGTWIN_|DATABASE)|DATABASE_?URL$|_DB_(HOST|PORT|NAME|USER|PASS)/i;

/** At most this many edits away from a known name counts as a typo (`TEST_DB_NMAE` is 2 from `TEST_DB_NAME`). */
const MAX_TYPO_DISTANCE = 2;

/**
 * Warnings for variables in the real environment or a `.env` file that pgtwin ignores although they look
 * meant for it: a near miss of a variable it reads (`TEST_DB_NMAE` → `TEST_DB_NAME`). Without this a typo
 * silently leaves the default in place.
 *
 * @example
 * unknownVariableWarnings(env.layers);
 * // ['TEST_DB_NMAE (in .env) is not a pgtwin variable and is ignored (did you mean TEST_DB_NAME?). Rename it to TEST_DB_NAME.']
 */
export function unknownVariableWarnings(layers: readonly EnvLayer[]): string[] {
  const warnings: string[] = [];
  const known = new Set(KNOWN_VARIABLES);
  for (const layer of layers) {
    for (const name of layer.names()) {
      if (known.has(name) || !PGTWIN_LIKE.test(name)) continue;
      const meant = closestName(name, KNOWN_VARIABLES, MAX_TYPO_DISTANCE);
      if (meant === undefined) continue;
      const where = layer.source === 'environment' ? 'in the environment' : `in ${layer.source}`;
      warnings.push(
        `${name} (${where}) is not a pgtwin variable and is ignored (did you mean ${meant}?). Rename it to ${meant}.`,
      );
    }
  }
  return warnings;
}
