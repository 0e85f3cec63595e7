/** A path into a JSON document: property names and array indexes from the root. */
export type JsonPath = readonly (string | number)[];

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * Formats a path the way error messages show it: `$`, then `.name` for identifier-like properties,
 * `["public.projects"]` for others and `[1]` for array indexes.
 *
 * @example
 * formatJsonPath(['public.projects', 1, 'nmae']) // '$["public.projects"][1].nmae'
 */
export function formatJsonPath(path: JsonPath): string {
  let text = '$';
  for (const step of path) {
    if (typeof step === 'number') text += `[${step}]`;
    else if (IDENTIFIER.test(step)) text += `.${step}`;
    else text += `[${JSON.stringify(step)}]`;
  }
  return text;
}
