import { closestName } from '../util/closest-name.js';
import type { EnvLayer } from './read-environment.js';

/** Every environment variable pgtwin reads; a near miss of one of them is reported. */
export const KNOWN_VARIABLES: readonly string[] = Object.freeze([
  'DATABASE_URL',
  'DB_HOST',
  'DB_PORT',
  'DB_NAME',
  'DB_USER',
  'DB_PASS',
  'TEST_DATABASE_URL',
  'TEST_DB_HOST',
  'TEST_DB_PORT',
  'TEST_DB_NAME',
  'TEST_DB_USER',
  'TEST_DB_PASS',
  'TEST_DB_ADMIN_URL',
  'PGSSLMODE',
  'PGTWIN_PROVIDER',
  'PGTWIN_ALLOW_UNMARKED',
  'PGTWIN_DEBUG',
  'PGTWIN_REBUILD',
  'PGTWIN_EMBEDDED_DATA_DIR',
  'PGTWIN_HANDOFF',
]);

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
