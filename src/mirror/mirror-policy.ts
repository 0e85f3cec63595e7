import { didYouMean } from '../util/closest-name.js';
import { MirrorPolicyError } from '../errors.js';

/**
 * Which tables may receive production rows. Shaped like the resolved configuration, so
 * `resolveConfig(...)` output can be passed as it is.
 */
export interface MirrorPolicy {
  readonly mirror: {
    /** Tables mirrored with their data, `schema.table`. */
    readonly full: readonly string[];
    /** Tables that keep production's structure but only ever hold test data, `schema.table`. */
    readonly structureOnly: readonly string[];
  };
  /** Pattern of per-project schemas (`*` matches any characters); never mirrored. */
  readonly projectSchemas: string;
}

/**
 * Throws a {@link MirrorPolicyError} unless production rows may be copied into `table` (`schema.table`).
 * Structure-only tables and project schemas are refused even with `allowUnmirrored`: no pgtwin path
 * ever fills them with production data.
 *
 * @example
 * enforceMirrorPolicy(config, 'public.prompts'); // passes with the default policy
 * enforceMirrorPolicy(config, 'public.projects'); // throws: structure only
 */
export function enforceMirrorPolicy(
  policy: MirrorPolicy,
  table: string,
  options: {
    allowUnmirrored?: boolean;
    /** Advice for the command line, which has no `allowUnmirrored`. */
    cli?: boolean;
  } = {},
): void {
  const schema = table.slice(0, table.indexOf('.'));
  if (schemaPattern(policy.projectSchemas).test(schema)) {
    throw new MirrorPolicyError(
      table,
      'project-schema',
      `Refusing to copy production rows into ${table}: its schema "${schema}" matches projectSchemas "${policy.projectSchemas}", whose tables keep production's structure but only ever hold test data. Seed it with test data instead.`,
    );
  }
  if (policy.mirror.structureOnly.includes(table)) {
    throw new MirrorPolicyError(
      table,
      'structure-only',
      `Refusing to copy production rows into ${table}: it is listed in mirror.structureOnly, so it only ever holds test data. Seed it instead, or move it to mirror.full if its production data belongs in tests.`,
    );
  }
  if (!options.allowUnmirrored && !policy.mirror.full.includes(table)) {
    throw new MirrorPolicyError(
      table,
      'unmirrored',
      `Refusing to copy production rows into ${table}: it is not listed in mirror.full${didYouMean(table, policy.mirror.full)}. ${
        options.cli
          ? 'pgtwin sync takes only tables of mirror.full: add it to mirror.full in the pgtwin config to mirror it.'
          : 'Add it there, or pass allowUnmirrored: true for a one-off copy.'
      }`,
    );
  }
}

function schemaPattern(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}
