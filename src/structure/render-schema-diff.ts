import type { SchemaDiff } from './compare-schemas.js';

/** Options of {@link renderSchemaDiff}. */
export interface RenderSchemaDiffOptions {
  /** Colour the output with ANSI escapes. @default false */
  color?: boolean;
  /** Names of the two sides in the header. @default { expected: 'expected', actual: 'actual' } */
  labels?: { expected: string; actual: string };
}

/**
 * Readable terminal text for a {@link SchemaDiff}: missing and extra objects with their definitions,
 * changed objects as a line diff of the two definitions.
 *
 * @example
 * ```ts
 * console.log(renderSchemaDiff(await compareSchemas(production, test), { labels: { expected: 'production', actual: 'test' } }));
 * // 1 changed, 1 missing, 0 extra (production → test)
 * // ~ changed table public.projects
 * //     ...
 * //   - "locale" text DEFAULT public.default_locale() NOT NULL,
 * //   + "locale" text DEFAULT 'en'::text NOT NULL,
 * ```
 */
export function renderSchemaDiff(diff: SchemaDiff, options: RenderSchemaDiffOptions = {}): string {
  const labels = options.labels ?? { expected: 'expected', actual: 'actual' };
  const paint = (code: number) => (text: string) =>
    options.color ? `\u001b[${code}m${text}\u001b[0m` : text;
  const red = paint(31);
  const green = paint(32);
  const bold = paint(1);
  if (diff.equal) return `Structures are identical (${labels.expected} = ${labels.actual}).`;

  const lines = [
    bold(
      `${diff.changed.length} changed, ${diff.missing.length} missing, ${diff.extra.length} extra ` +
        `(${labels.expected} → ${labels.actual})`,
    ),
  ];
  const indent = (text: string, prefix: string, colour: (s: string) => string) =>
    text.split('\n').map((line) => colour(`  ${prefix} ${line}`));
  for (const object of diff.changed) {
    lines.push(bold(`~ changed ${object.key}`));
    for (const line of lineDiff(object.expected!.split('\n'), object.actual!.split('\n'))) {
      lines.push(
        line.op === '='
          ? `    ${line.text}`
          : line.op === '-'
            ? red(`  - ${line.text}`)
            : green(`  + ${line.text}`),
      );
    }
  }
  for (const object of diff.missing) {
    lines.push(bold(`- missing in ${labels.actual}: ${object.key}`), ...indent(object.expected!, '-', red));
  }
  for (const object of diff.extra) {
    lines.push(bold(`+ extra in ${labels.actual}: ${object.key}`), ...indent(object.actual!, '+', green));
  }
  return lines.join('\n');
}

/** Longest-common-subsequence line diff; definitions are short, so the quadratic table is fine. */
function lineDiff(a: string[], b: string[]): { op: '=' | '-' | '+'; text: string }[] {
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: { op: '=' | '-' | '+'; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push({ op: '=', text: a[i++]! });
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      out.push({ op: '-', text: a[i++]! });
    } else {
      out.push({ op: '+', text: b[j++]! });
    }
  }
  return out;
}
