import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDynamicMap, createLinearMap, dequantizeBlockwise, quantizeBlock, quantizeBlockwise } from '../src/index.js';
import { createState } from '../src/optim/state.js';
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

describe('optimizer-state encoding rules (quantizeBlock nudges)', () => {
  const unsigned = createDynamicMap(false);
  const signed = createDynamicMap(true);
  // Hand-checked positions: the unsigned map is 0, 3.25e-7, 7.75e-7, ...; the signed map has
  // 0 at 127 and its smallest magnitude 5.5e-7 at 126 (negative) and 128 (positive).
  const encode = (map: Float32Array, xs: number[], nudge: 'none' | 'sign' | 'positive') => {
    const codes = new Uint8Array(xs.length);
    const absmax = quantizeBlock(map, xs, 0, xs.length, codes, 0, nudge);
    return { codes: Array.from(codes), absmax };
  };

  it("'positive': a value x > 0 nearest to 0 takes the smallest positive code; 0 keeps the code of 0", () => {
    assert.equal(unsigned[0], 0);
    assert.ok(Math.abs(unsigned[1] - 3.25e-7) < 1e-12);
    // 1e-9 and 1.6e-7 of absmax round to 0; 1.7e-7 rounds to code 1 anyway; 1e-45 (the smallest
    // denormal) over absmax 1e30 underflows to 0 in float32 and still takes code 1.
    const { codes, absmax } = encode(unsigned, [1, 1e-9, 1.6e-7, 1.7e-7, 0, -0], 'positive');
    assert.equal(absmax, 1);
    assert.deepEqual(codes, [255, 1, 1, 1, 0, 0]);
    assert.deepEqual(encode(unsigned, [1e30, 1e-45, 0], 'positive').codes, [255, 1, 0]);
    // Plain nearest (the public quantizeBlockwise) keeps them at 0.
    assert.deepEqual(encode(unsigned, [1, 1e-9, 1.6e-7, 1.7e-7, 0, -0], 'none').codes, [255, 0, 0, 1, 0, 0]);
    assert.deepEqual(Array.from(quantizeBlockwise(Float32Array.of(1, 1e-9, 0), { map: unsigned, blockSize: 64 }).codes), [255, 0, 0]);
  });

  it("'positive': an all-zero block keeps absmax 0 and the code of 0", () => {
    assert.deepEqual(encode(unsigned, [0, 0, -0], 'positive'), { codes: [0, 0, 0], absmax: 0 });
  });

  it("'sign': the sign nudge of signed states is unchanged", () => {
    assert.equal(signed[127], 0);
    const { codes } = encode(signed, [1, -1e-9, 1e-9, 0], 'sign');
    assert.deepEqual(codes, [255, 126, 127, 127]);
  });

  it('8-bit optimizer states use the rules: unsigned states stay positive, signed states keep their sign', () => {
    const v = createState('blockwise8', 'unsigned', 64, 64);
    const m = createState('blockwise8', 'signed', 64, 64);
    const src = new Float32Array(64);
    src.set([1, 1e-9, 0, -1e-9]);
    v.store(0, 64, src.slice());
    m.store(0, 64, src.slice());
    const vOut = new Float32Array(64);
    const mOut = new Float32Array(64);
    v.load(0, 64, vOut);
    m.load(0, 64, mOut);
    assert.equal(vOut[1], unsigned[1], 'v = 1e-9 of absmax decodes to the smallest positive value');
    assert.equal(vOut[2], 0, 'v = 0 stays 0');
    assert.equal(mOut[3], signed[126], 'a tiny negative m keeps its sign');
    assert.equal(mOut[1], 0, 'a tiny positive m rounds to 0 (the signed rule is only about the sign)');
  });
});
