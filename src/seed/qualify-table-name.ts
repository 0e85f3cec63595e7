/**
 * `schema.table` for a table name as users write it: a bare name means `public`.
 *
 * @example
 * qualifyTableName('projects') // 'public.projects'
 */
export function qualifyTableName(name: string): string {
  return name.includes('.') ? name : `public.${name}`;
}
