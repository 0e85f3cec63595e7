import { OBJECT_KINDS, type StructureObject } from './structure-snapshot.js';

const RANK = new Map<string, number>(OBJECT_KINDS.map((kind, index) => [kind, index]));

/**
 * Orders objects so each comes after everything in `dependsOn`, otherwise by kind (the
 * {@link OBJECT_KINDS} order) and key, so the result is deterministic. A dependency loop cannot be
 * satisfied by any order; it is broken at its lowest-ranked object and the database reports what fails.
 */
export function orderObjects(
  objects: StructureObject[],
  dependsOn: Map<string, Set<string>>,
): StructureObject[] {
  const byKey = new Map(objects.map((object) => [object.key, object]));
  const waitingOn = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const object of objects) {
    const deps = [...(dependsOn.get(object.key) ?? [])].filter((dep) => dep !== object.key && byKey.has(dep));
    waitingOn.set(object.key, deps.length);
    for (const dep of deps) dependents.set(dep, [...(dependents.get(dep) ?? []), object.key]);
  }

  const before = (a: StructureObject, b: StructureObject) =>
    RANK.get(a.kind)! - RANK.get(b.kind)! || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const ready = new Heap(before);
  for (const object of objects) if (waitingOn.get(object.key) === 0) ready.push(object);

  const ordered: StructureObject[] = [];
  const placed = new Set<string>();
  while (ordered.length < objects.length) {
    let next = ready.pop();
    if (next === undefined) next = objects.filter((o) => !placed.has(o.key)).sort(before)[0]!;
    if (placed.has(next.key)) continue;
    placed.add(next.key);
    ordered.push(next);
    for (const dependent of dependents.get(next.key) ?? []) {
      const left = waitingOn.get(dependent)! - 1;
      waitingOn.set(dependent, left);
      if (left === 0 && !placed.has(dependent)) ready.push(byKey.get(dependent)!);
    }
  }
  return ordered;
}

/** A binary min-heap. */
class Heap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => number) {}

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.before(items[i]!, items[parent]!) >= 0) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < items.length && this.before(items[left]!, items[smallest]!) < 0) smallest = left;
        if (right < items.length && this.before(items[right]!, items[smallest]!) < 0) smallest = right;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest]!, items[i]!];
        i = smallest;
      }
    }
    return top;
  }
}
