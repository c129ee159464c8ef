/**
 * Quantization maps: 2^bits float32 values, sorted ascending, that a code indexes (256 for the
 * 8-bit codec, 16 for the 4-bit one).
 * docs/architecture.md §1.1 is normative; every intermediate is rounded to float32 as the reference does.
 */

const f32 = Math.fround;

/** Number of codes in an 8-bit map. */
export const MAP_SIZE = 256;

/** Number of codes in a 4-bit map. */
export const MAP_SIZE_4BIT = 16;

/**
 * float32 `linspace(start, end, steps)` computed the way the reference (PyTorch's CPU kernel)
 * does it: the first half counts up from `start`, the second half down from `end`.
 */
export function linspaceFloat32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < halfway ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - i - 1)));
  }
  return out;
}

/**
 * The "dynamic tree" map of Dettmers et al.: base-10 exponents with a linear fraction.
 * `signed` maps cover [-0.993, 1]; unsigned maps cover [0, 1] with twice the resolution.
 */
export function createDynamicMap(signed = true, maxExponentBits = 7, totalBits = 8): Float32Array {
  if (!Number.isInteger(totalBits) || totalBits < 2 || totalBits > 8) {
    throw new Error(`createDynamicMap: totalBits must be an integer in [2, 8], got ${totalBits}`);
  }
  if (!Number.isInteger(maxExponentBits) || maxExponentBits < 1 || maxExponentBits > totalBits - 1) {
    throw new Error(
      `createDynamicMap: maxExponentBits must be an integer in [1, ${totalBits - 1}], got ${maxExponentBits}`,
    );
  }
  const nonSignBits = totalBits - 1;
  const values: number[] = [];
  const addMidpoints = (fractionItems: number, exponent: number) => {
    const boundaries = linspaceFloat32(0.1, 1, fractionItems);
    // Parse the decimal literal so that 10^exponent is the correctly rounded double, as in Python.
    const scale = f32(Number(`1e${exponent}`));
    for (let j = 0; j + 1 < boundaries.length; j++) {
      const mean = f32(f32(boundaries[j] + boundaries[j + 1]) / 2);
      const v = f32(scale * mean);
      values.push(v);
      if (signed) values.push(-v);
    }
  };
  for (let i = 0; i < maxExponentBits; i++) {
    const fractionItems = signed
      ? 2 ** (i + nonSignBits - maxExponentBits) + 1
      : 2 ** (i + nonSignBits - maxExponentBits + 1) + 1;
    addMidpoints(fractionItems, -(maxExponentBits - 1) + i);
  }
  const additional = 2 ** (nonSignBits - maxExponentBits) - 1;
  if (additional > 0) addMidpoints(additional + 1, 0);
  values.push(0, 1);
  const size = 2 ** totalBits;
  while (values.length < size) values.push(0);
  if (values.length > size) {
    throw new Error(`createDynamicMap: ${values.length} values do not fit ${totalBits} bits`);
  }
  return Float32Array.from(values).sort();
}

/** Evenly spaced map: signed covers [-1, 1], unsigned [0, 1]. For ablations. */
export function createLinearMap(signed = true, totalBits = 8): Float32Array {
  if (!Number.isInteger(totalBits) || totalBits < 1 || totalBits > 8) {
    throw new Error(`createLinearMap: totalBits must be an integer in [1, 8], got ${totalBits}`);
  }
  return linspaceFloat32(signed ? -1 : 0, 1, 2 ** totalBits);
}

/** Throws unless `map` is a usable map of `size` entries (256: 8-bit): finite, sorted ascending, within [-1, 1]. */
export function validateMap(map: unknown, what = 'map', size = MAP_SIZE): asserts map is Float32Array {
  if (!(map instanceof Float32Array)) throw new Error(`${what} must be a Float32Array`);
  if (map.length !== size) throw new Error(`${what} must have ${size} values, got ${map.length}`);
  for (let i = 0; i < size; i++) {
    const v = map[i];
    if (!Number.isFinite(v) || v < -1 || v > 1) throw new Error(`${what}[${i}] = ${v} is outside [-1, 1]`);
    if (i > 0 && v < map[i - 1]) throw new Error(`${what} is not sorted ascending at index ${i}`);
  }
}
