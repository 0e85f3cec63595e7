import type { CatalogTable } from './table-catalog.js';

/** Tables whose foreign keys reference each other in a loop (or a table referencing itself). */
export interface ForeignKeyCycle {
  /** Keys (`schema.name`) of the tables in the loop, sorted. */
  tables: string[];
  /** The foreign keys that close the loop, with whether they can be deferred to commit time. */
  foreignKeys: { table: string; name: string; deferrable: boolean }[];
}

/** Result of {@link sortTablesByForeignKeys}. */
export interface TableOrder {
  /** Every input table once, referenced tables before the tables that reference them. */
  tables: CatalogTable[];
  /** Loops that no order can satisfy; load their rows with deferred constraints or in two passes. */
  cycles: ForeignKeyCycle[];
}

/**
 * Orders tables so each comes after the tables its foreign keys reference (loading order; reverse it for
 * deleting). References to tables outside `tables` are ignored. Tables in a loop are kept together, in
 * name order, and the loop is reported in `cycles` rather than thrown, since deferrable keys make it loadable.
 * Ties keep schema-then-name order, so the result is deterministic.
 *
 * @example
 * ```ts
 * const { tables, cycles } = sortTablesByForeignKeys(await readTableCatalog(client, selection));
 * tables.map((t) => t.key); // ['public.clients', 'public.projects', 'project_alpha.content_entries', ...]
 * ```
 */
export function sortTablesByForeignKeys(tables: readonly CatalogTable[]): TableOrder {
  const byKey = new Map(tables.map((table) => [table.key, table]));
  const sorted = [...byKey.values()].sort((a, b) => compareKeys(a.key, b.key));
  const references = new Map(
    sorted.map((table) => [
      table.key,
      [...new Set(table.foreignKeys.map((fk) => `${fk.references.schema}.${fk.references.table}`))].filter(
        (key) => byKey.has(key),
      ),
    ]),
  );

  const components = stronglyConnected(
    sorted.map((t) => t.key),
    references,
  );
  const componentOf = new Map<string, number>();
  components.forEach((members, index) => members.forEach((key) => componentOf.set(key, index)));

  // Tarjan yields components with their dependencies first; a stable Kahn pass over the components
  // then keeps name order among independent tables.
  const pending = components.map(
    (members, index) =>
      new Set(
        members
          .flatMap((key) => references.get(key)!.map((ref) => componentOf.get(ref)!))
          .filter((c) => c !== index),
      ),
  );
  const order: number[] = [];
  const done = new Set<number>();
  while (order.length < components.length) {
    const next = components
      .map((members, index) => ({ members, index }))
      .filter(({ index }) => !done.has(index) && [...pending[index]!].every((dep) => done.has(dep)))
      .sort((a, b) => compareKeys(a.members[0]!, b.members[0]!))[0]!;
    done.add(next.index);
    order.push(next.index);
  }

  const cycles: ForeignKeyCycle[] = [];
  for (const members of components) {
    const loop = members.length > 1 || references.get(members[0]!)!.includes(members[0]!);
    if (!loop) continue;
    cycles.push({
      tables: members,
      foreignKeys: members.flatMap((key) =>
        byKey
          .get(key)!
          .foreignKeys.filter((fk) => members.includes(`${fk.references.schema}.${fk.references.table}`))
          .map((fk) => ({ table: key, name: fk.name, deferrable: fk.deferrable })),
      ),
    });
  }

  return { tables: order.flatMap((index) => components[index]!.map((key) => byKey.get(key)!)), cycles };
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Tarjan's algorithm; each component's members sorted by key. */
function stronglyConnected(keys: string[], edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const result: string[][] = [];
  let counter = 0;

  const visit = (key: string): void => {
    index.set(key, counter);
    low.set(key, counter);
    counter++;
    stack.push(key);
    onStack.add(key);
    for (const next of edges.get(key) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(key, Math.min(low.get(key)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(key, Math.min(low.get(key)!, index.get(next)!));
      }
    }
    if (low.get(key) === index.get(key)) {
      const members: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        members.push(member);
      } while (member !== key);
      result.push(members.sort(compareKeys));
    }
  };

  for (const key of keys) if (!index.has(key)) visit(key);
  return result;
}
