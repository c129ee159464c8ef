import assert from 'node:assert/strict';

/** Brute force: the smallest distance from v to any map value. */
export function nearestDistance(map: Float32Array, v: number): number {
  let best = Infinity;
  for (const m of map) best = Math.min(best, Math.abs(v - m));
  return best;
}

/** Asserts absmax is each block's max |x| and every code is a nearest map value (ties either way). */
export function assertNearestCodes(x: Float32Array, codes: Uint8Array, absmax: Float32Array, map: Float32Array, blockSize: number, label: string): void {
  assert.equal(absmax.length, Math.ceil(x.length / blockSize), `${label}: absmax count`);
  for (let b = 0; b < absmax.length; b++) {
    const start = b * blockSize;
    const end = Math.min(x.length, start + blockSize);
    let max = 0;
    for (let i = start; i < end; i++) max = Math.max(max, Math.abs(x[i]));
    assert.equal(absmax[b], max, `${label}: absmax of block ${b}`);
    for (let i = start; i < end; i++) {
      if (max === 0) {
        assert.equal(Math.abs(map[codes[i]]), nearestDistance(map, 0), `${label}: a zero block uses the code nearest 0`);
        continue;
      }
      const v = x[i] / max;
      assert.ok(Math.abs(v - map[codes[i]]) <= nearestDistance(map, v) + 1e-7, `${label}[${i}]: code ${codes[i]} is not nearest to ${v}`);
    }
  }
}
