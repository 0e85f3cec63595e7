import type { KeyList, MirrorDrift, RowKey } from './compare-mirror.js';

/**
 * The drift report as terminal lines: one per table, then up to three indented lines naming the keys
 * added, removed and changed in the target.
 *
 * @example
 * ```ts
 * console.log(renderMirrorDrift(await compareMirror(production, test, ['public.prompts'])));
 * // public.prompts  differs: source 310 rows, target 309 rows
 * //   removed 1: id=17
 * ```
 */
export function renderMirrorDrift(drift: MirrorDrift): string {
  const width = Math.max(0, ...drift.tables.map((t) => t.table.length));
  const lines: string[] = [];
  for (const table of drift.tables) {
    const name = table.table.padEnd(width);
    if (table.same) {
      lines.push(`${name}  same: ${plural(table.source.rowCount, 'row')}`);
      continue;
    }
    lines.push(
      `${name}  differs: source ${plural(table.source.rowCount, 'row')}, target ${plural(table.target.rowCount, 'row')}`,
    );
    if (table.rows === null) {
      lines.push('  no primary key: cannot name the rows that differ');
      continue;
    }
    for (const kind of ['added', 'removed', 'changed'] as const) {
      const list = table.rows[kind];
      if (list.count > 0) lines.push(`  ${kind} ${list.count}: ${renderKeys(list)}`);
    }
  }
  return lines.join('\n');
}

function renderKeys(list: KeyList): string {
  const more = list.count - list.keys.length;
  return list.keys.map(renderKey).join(', ') + (more > 0 ? ` and ${more} more` : '');
}

function renderKey(key: RowKey): string {
  return Object.entries(key)
    .map(
      ([column, value]) => `${column}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`,
    )
    .join(' ');
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
