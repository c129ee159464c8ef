import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDynamicMap, createLinearMap, dequantizeBlockwise, quantizeBlockwise } from '../src/index.js';
import { normal, rng } from './helpers/float64-rules.js';
import { assertNearestCodes } from './helpers/quant-checks.js';

/** Half the gap between the two map values around v (the worst rounding error there). */
function halfLocalGap(map: Float32Array, v: number): number {
  let i = 0;
  while (i < 254 && map[i + 1] < v) i++;
  return (map[i + 1] - map[i]) / 2;
}

function check(x: Float32Array, map: Float32Array, blockSize: number, label: string) {
  const { codes, absmax } = quantizeBlockwise(x, { map, blockSize });
  assert.equal(codes.length, x.length);
  const y = dequantizeBlockwise(codes, absmax, { map, blockSize });
  assertNearestCodes(x, codes, absmax, map, blockSize, label);
  for (let b = 0; b < absmax.length; b++) {
    const start = b * blockSize;
    const end = Math.min(x.length, start + blockSize);
    const max = absmax[b];
    for (let i = start; i < end; i++) {
      if (max === 0) {
        assert.equal(y[i], 0, `${label}: zero block dequantizes to 0`);
        continue;
      }
      const v = x[i] / max;
      // Half the local code gap (or the distance past the map's ends), times absmax, plus the
      // float32 rounding of x/absmax and of map·absmax.
      const beyond = Math.max(map[0] - v, v - map[255], 0);
      const bound = Math.max(halfLocalGap(map, v), beyond) * max + 2 ** -22 * Math.abs(x[i]);
      assert.ok(Math.abs(y[i] - x[i]) <= bound, `${label}[${i}]: error ${Math.abs(y[i] - x[i])} > ${bound}`);
    }
  }
}

describe('quantizeBlockwise / dequantizeBlockwise', () => {
  const rand = rng(7);
  const signed = createDynamicMap(true);
  const linear = createLinearMap(true);

  it('normal inputs, every block size, partial last block', () => {
    for (const blockSize of [64, 128, 256, 512, 1024, 2048, 4096]) {
      const x = Float32Array.from({ length: 3 * blockSize + 37 }, () => normal(rand));
      check(x, signed, blockSize, `normal/${blockSize}`);
    }
  });

  it('heavy-tailed inputs (Cauchy) and the linear map', () => {
    const x = Float32Array.from({ length: 5000 }, () => Math.tan(Math.PI * (rand() - 0.5)));
    check(x, signed, 256, 'cauchy/dynamic');
    check(x, linear, 256, 'cauchy/linear');
  });

  it('adversarial inputs: map values, midpoints, zero blocks, denormals, huge values', () => {
    const n = 64 * 8;
    const x = new Float32Array(n);
    for (let i = 0; i < 64; i++) x[i] = signed[(i * 4) % 256]; // exact map values (absmax 1)
    for (let i = 64; i < 128; i++) x[i] = (signed[i + 60] + signed[i + 61]) / 2; // exact midpoints: ties
    // 128..191 stays all zero
    x[192] = 1e-40; // a lone denormal
    for (let i = 256; i < 320; i++) x[i] = (i % 2 ? 1 : -1) * 1e30;
    x[320] = 1;
    x[321] = -1e-9; // far below the smallest code
    for (let i = 384; i < n; i++) x[i] = -0.5;
    check(x, signed, 64, 'adversarial');
    const { codes } = quantizeBlockwise(x, { map: signed, blockSize: 64 });
    for (let i = 0; i < 64; i++) assert.equal(signed[codes[i]], x[i], 'exact map values round-trip');
  });

  it('an all-zero tensor gets absmax 0 and the code of 0, never NaN', () => {
    const { codes, absmax } = quantizeBlockwise(new Float32Array(300), { map: signed, blockSize: 128 });
    assert.deepEqual([...absmax], [0, 0, 0]);
    assert.ok(codes.every((c) => signed[c] === 0));
    const y = dequantizeBlockwise(codes, absmax, { map: signed, blockSize: 128 });
    assert.ok(y.every((v) => Object.is(v, 0)));
  });

  it('handles empty tensors', () => {
    const { codes, absmax } = quantizeBlockwise(new Float32Array(0), { map: signed, blockSize: 64 });
    assert.equal(codes.length, 0);
    assert.equal(absmax.length, 0);
  });

  it('rejects bad input with a message naming the problem', () => {
    const x = new Float32Array(100);
    assert.throws(() => quantizeBlockwise(x, { map: signed, blockSize: 100 }), /blockSize must be a power of two/);
    assert.throws(() => quantizeBlockwise(x, { map: signed, blockSize: 8192 }), /blockSize/);
    assert.throws(() => quantizeBlockwise(new Float64Array(4) as unknown as Float32Array, { map: signed }), /x must be a Float32Array/);
    assert.throws(() => quantizeBlockwise(Float32Array.of(1, NaN), { map: signed }), /x\[1\] = NaN is not finite/);
    assert.throws(() => quantizeBlockwise(x, { map: new Float32Array(3) }), /256 values/);
    assert.throws(() => dequantizeBlockwise(new Uint8Array(100), new Float32Array(1), { map: signed, blockSize: 64 }), /absmax has 1 values/);
  });
});
