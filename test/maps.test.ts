import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDynamicMap, createLinearMap, validateMap } from '../src/index.js';

/** Values of `map` whose magnitude lies in the decade [0.1·10^e, 10^e). */
const inDecade = (map: Float32Array, e: number, sign: 1 | -1) =>
  [...map].filter((v) => sign * v >= 0.1 * 10 ** e && sign * v < 10 ** e).length;

describe('createDynamicMap', () => {
  const signed = createDynamicMap(true);
  const unsigned = createDynamicMap(false);

  it('has 256 sorted float32 values including 0 and 1', () => {
    for (const map of [signed, unsigned]) {
      assert.ok(map instanceof Float32Array);
      assert.equal(map.length, 256);
      for (let i = 1; i < 256; i++) assert.ok(map[i] > map[i - 1], `strictly ascending at ${i}`);
      assert.ok(map.includes(0));
      assert.equal(map[255], 1);
    }
    validateMap(signed);
    validateMap(unsigned);
  });

  it('signed: 127 negative and 127 positive midpoints, symmetric, plus 0 and 1', () => {
    const neg = [...signed].filter((v) => v < 0);
    const pos = [...signed].filter((v) => v > 0 && v < 1);
    assert.equal(neg.length, 127);
    assert.equal(pos.length, 127);
    for (const v of pos) assert.ok(signed.includes(-v), `-${v} present`);
  });

  it('puts 2^i values per sign in decade i (docs/architecture.md §1.1: k-1 = 2^i midpoints)', () => {
    for (let i = 0; i < 7; i++) {
      assert.equal(inDecade(signed, -6 + i, 1), 2 ** i, `signed decade ${i}`);
      assert.equal(inDecade(signed, -6 + i, -1), 2 ** i);
      assert.equal(inDecade(unsigned, -6 + i, 1), 2 ** (i + 1), `unsigned decade ${i}`);
    }
  });

  it('matches hand-derived spot values', () => {
    // Smallest magnitude: linspace(0.1, 1, 2) = [0.1, 1], midpoint 0.55, times 1e-6,
    // each operation rounded to float32 as in the reference.
    const f = Math.fround;
    assert.equal(signed[128], f(f(1e-6) * f(f(f(0.1) + 1) / 2)));
    assert.equal(signed[127], 0);
    assert.equal(signed[126], -signed[128]);
    // Most negative: last midpoint of linspace(0.1, 1, 65): 1 - 0.9/64/2 = 0.99296875.
    assert.ok(Math.abs(signed[0] + 0.99296875) < 1e-7, `min ${signed[0]}`);
    // Unsigned smallest: linspace(0.1, 1, 3) = [0.1, 0.55, 1] → 0.325e-6 and 0.775e-6.
    assert.equal(unsigned[0], 0);
    assert.ok(Math.abs(unsigned[1] - 3.25e-7) < 1e-13);
    assert.ok(Math.abs(unsigned[2] - 7.75e-7) < 1e-13);
    // Unsigned largest below 1: 1 - 0.9/128/2 = 0.996484375.
    assert.ok(Math.abs(unsigned[254] - 0.996484375) < 1e-7);
    // The largest decade of the signed map: 64 midpoints of linspace(0.1, 1, 65), step 0.9/64.
    const step = 0.9 / 64;
    for (let j = 0; j < 64; j++) {
      const expected = 0.1 + step * (j + 0.5);
      assert.ok(Math.abs(signed[191 + j] - expected) < 2e-7, `signed[${191 + j}] = ${signed[191 + j]}, expected ${expected}`);
    }
  });

  it('agrees with a float64 derivation to float32 precision', () => {
    const ref: number[] = [0, 1];
    for (let i = 0; i < 7; i++) {
      const k = 2 ** i + 1;
      for (let j = 0; j < k - 1; j++) {
        const mid = 0.1 + (0.9 / (k - 1)) * (j + 0.5);
        ref.push(mid * 10 ** (i - 6), -mid * 10 ** (i - 6));
      }
    }
    ref.sort((a, b) => a - b);
    for (let i = 0; i < 256; i++) {
      assert.ok(Math.abs(signed[i] - ref[i]) <= Math.abs(ref[i]) * 2 ** -21, `index ${i}: ${signed[i]} vs ${ref[i]}`);
    }
  });

  it('rejects impossible bit widths', () => {
    assert.throws(() => createDynamicMap(true, 9), /maxExponentBits/);
    assert.throws(() => createDynamicMap(true, 7, 9), /totalBits/);
  });
});

describe('createLinearMap', () => {
  it('signed: 256 evenly spaced values over [-1, 1]', () => {
    const map = createLinearMap(true);
    assert.equal(map.length, 256);
    assert.equal(map[0], -1);
    assert.equal(map[255], 1);
    for (let i = 0; i < 256; i++) assert.ok(Math.abs(map[i] - (-1 + (2 * i) / 255)) < 1e-7);
  });
  it('unsigned: over [0, 1]', () => {
    const map = createLinearMap(false);
    assert.equal(map[0], 0);
    assert.equal(map[255], 1);
    assert.ok(Math.abs(map[1] - 1 / 255) < 1e-8);
  });
});

describe('validateMap', () => {
  it('names the problem', () => {
    assert.throws(() => validateMap(new Float64Array(256)), /Float32Array/);
    assert.throws(() => validateMap(new Float32Array(10)), /256 values/);
    const unsorted = createDynamicMap(true).reverse();
    assert.throws(() => validateMap(unsorted), /not sorted/);
    const nan = createDynamicMap(true);
    nan[3] = NaN;
    assert.throws(() => validateMap(nan), /outside/);
  });
});
