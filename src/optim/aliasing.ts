/**
 * Which arrays share memory: the optimizer's aliasing check (docs/reliability.md, invariant 8).
 * Two views overlap when they lie in the same memory (the same buffer, or what `key` says is the
 * same memory, e.g. a WebAssembly memory whose buffer object changes as it grows) and their byte
 * ranges intersect. Empty views share nothing.
 */
export interface NamedView {
  view: ArrayBufferView;
  what: string;
}

/** The first two views that overlap, by name (in the order given), or null. */
export function findOverlap(views: readonly NamedView[], key?: (view: ArrayBufferView) => object | undefined): [string, string] | null {
  const byMemory = new Map<object, { start: number; end: number; order: number }[]>();
  views.forEach(({ view }, order) => {
    if (view.byteLength === 0) return;
    const memory = key?.(view) ?? view.buffer;
    let list = byMemory.get(memory);
    if (!list) byMemory.set(memory, (list = []));
    list.push({ start: view.byteOffset, end: view.byteOffset + view.byteLength, order });
  });
  for (const list of byMemory.values()) {
    list.sort((a, b) => a.start - b.start || a.order - b.order);
    // Sorted by start, a range overlaps some earlier one iff it starts before the furthest end so far.
    let furthest = list[0];
    for (let i = 1; i < list.length; i++) {
      const r = list[i];
      if (r.start < furthest.end) {
        const [a, b] = furthest.order < r.order ? [furthest, r] : [r, furthest];
        return [views[a.order].what, views[b.order].what];
      }
      if (r.end > furthest.end) furthest = r;
    }
  }
  return null;
}
