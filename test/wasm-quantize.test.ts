/**
 * WebAssembly block-wise quantize/dequantize against the reference functions (src/quant): the
 * same codes and absmax for every input, including values exactly at and next to every
 * rounding threshold of the maps, partial blocks and all-zero blocks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam8bit, createDynamicMap, createLinearMap, createReferenceKernel, dequantizeBlockwise, nearestCode, quantizeBlockwise, type CpuKernel } from '../src/index.js';
import { createWasmKernel, wasmDequantizeBlockwise, wasmKernelsSupported, wasmQuantizeBlockwise } from '../src/kernels/cpu/index.js';
import { buildTable } from '../src/kernels/cpu/wasm-tables.js';
import type { StateNudge } from '../src/quant/blockwise.js';
import { rng } from './helpers/float64-rules.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The float32 neighbours of x (x itself included). */
function around(x: number): number[] {
  f32[0] = x;
  const b = u32[0];
  const out: number[] = [];
  for (const d of [-2, -1, 0, 1, 2]) {
    u32[0] = b + d;
    if (Number.isFinite(f32[0])) out.push(f32[0]);
  }
  return out;
}

/** Values at and next to every midpoint between neighbouring map values, both signs, plus extremes. */
function thresholdProbes(map: Float32Array): Float32Array {
  const v: number[] = [0, -0, 1, -1, 1e-30, -1e-30, 5e-45, -5e-45, 2 ** -24, -(2 ** -24)];
  for (let i = 0; i + 1 < map.length; i++) {
    for (const x of around((map[i] + map[i + 1]) / 2)) v.push(x, -x);
    for (const x of around(map[i])) v.push(x, -x);
  }
  // Keep |x| <= 1 and put an exact 1 in each block of 64, so x / absmax = x.
  const xs = v.filter((x) => Math.abs(x) <= 1);
  const out: number[] = [];
  for (let i = 0; i < xs.length; i += 63) out.push(1, ...xs.slice(i, i + 63));
  return Float32Array.from(out);
}

const wasmOk = wasmKernelsSupported();

describe('WebAssembly quantize/dequantize vs the reference', { skip: !wasmOk && 'WebAssembly SIMD/threads unavailable' }, () => {
  const maps: [string, Float32Array][] = [
    ['dynamic signed', createDynamicMap(true)],
    ['dynamic unsigned', createDynamicMap(false)],
    ['linear signed', createLinearMap(true)],
    ['dynamic signed, 4-bit exponent', createDynamicMap(true, 4)],
  ];

  for (const [name, map] of maps) {
    it(`${name}: identical codes at and around every threshold`, () => {
      const x = thresholdProbes(map);
      const ref = quantizeBlockwise(x, { map, blockSize: 64 });
      const got = wasmQuantizeBlockwise(x, map, 64);
      assert.ok(got, 'the map has a lookup table');
      assert.deepEqual(got.absmax, ref.absmax);
      const i = ref.codes.findIndex((c, j) => c !== got.codes[j]);
      assert.equal(i, -1, `x = ${x[i]}: reference code ${ref.codes[i]}, wasm ${got.codes[i]}`);
    });

    it(`${name}: identical codes, absmax and dequantized values on random data`, () => {
      const rand = rng(3);
      for (const [n, blockSize] of [[10_000, 2048], [4096 * 3 + 5, 4096], [257, 64], [3, 256], [64 * 5 + 2, 64]]) {
        const x = new Float32Array(n);
        for (let i = 0; i < n; i++) x[i] = (rand() - 0.5) * 10 ** (6 * rand() - 4);
        x.fill(0, 0, Math.min(n, blockSize)); // first block all zeros
        const ref = quantizeBlockwise(x, { map, blockSize });
        const got = wasmQuantizeBlockwise(x, map, blockSize)!;
        assert.deepEqual(got.absmax, ref.absmax, `n=${n}: absmax`);
        assert.deepEqual(got.codes, ref.codes, `n=${n}: codes`);
        const back = wasmDequantizeBlockwise(ref.codes, ref.absmax, map, blockSize);
        assert.deepEqual(back, dequantizeBlockwise(ref.codes, ref.absmax, { map, blockSize }), `n=${n}: dequantized`);
        assert.ok(back.subarray(0, Math.min(n, blockSize)).every((v) => v === 0), 'an all-zero block decodes to exact zeros');
      }
    });
  }

  // The optimizer-state rules, written out: signed states keep their sign; a positive unsigned
  // state never takes the code of 0 (it takes the smallest positive map value).
  const stateRule = (map: Float32Array, r: number, nudge: StateNudge): number => {
    let want = nearestCode(map, r);
    if (nudge === 'sign') {
      if (r > 0 && map[want] < 0) want++;
      else if (r < 0 && map[want] >= 0) want--;
    } else if (nudge === 'positive' && r > 0 && map[want] === 0) {
      want = map.findIndex((v) => v > 0);
    }
    return want;
  };

  const cases: [string, Float32Array, StateNudge][] = [
    ['signed', createDynamicMap(true), 'none'],
    ['signed', createDynamicMap(true), 'sign'],
    ['unsigned', createDynamicMap(false), 'none'],
    ['unsigned', createDynamicMap(false), 'positive'],
  ];
  for (const [name, map, nudge] of cases) {
    it(`the lookup table reproduces nearestCode and the '${nudge}' state rule (${name} map) for every float32 in [-1, 1] sampled densely`, () => {
      const table = buildTable(map, nudge)!;
      const view = new DataView(table.buffer);
      const KLO = 0;
      const CELLS = 0x3f80 - KLO + 1;
      const T_CELL = 1040;
      const T_FLAT = T_CELL + 8 * CELLS;
      // The kernel's lookup (assembly/kernels.ts quant4), in scalar JS.
      const lookup = (r: number) => {
        f32[0] = r;
        const bits = u32[0];
        const mag = bits & 0x7fffffff;
        const key = Math.min(Math.max(mag >>> 16, KLO), 0x3f80);
        const negative = bits >>> 31 === 1;
        const entry = view.getUint32(T_CELL + 4 * (key - KLO + (negative ? CELLS : 0)), true);
        const past = mag > ((key << 16) | (entry & 0xffff));
        return (entry >>> 16) + (past ? (negative ? -1 : 1) : 0);
      };
      // The update kernels' flat lookup (quant4f), indexed by the quotient's high 16 bits.
      const lookupFlat = (r: number) => {
        f32[0] = r;
        const bits = u32[0];
        const entry = view.getUint32(T_FLAT + 4 * (bits >>> 16), true);
        const past = (bits & 0xffff) > (entry & 0xffff);
        return (entry >>> 16) + (past ? (bits >>> 31 ? -1 : 1) : 0);
      };
      // Every 2^9-th float32 bit pattern with magnitude up to 1 (about 2 million values).
      for (let b = 0; b <= 0x3f800000; b += 512) {
        for (const sign of [0, 0x80000000]) {
          u32[0] = (b | sign) >>> 0;
          const r = f32[0];
          if (r === 0) continue; // zero takes a separate path (the code of 0)
          const want = stateRule(map, r, nudge);
          if (lookup(r) !== want) assert.fail(`r = ${r} ('${nudge}'): table ${lookup(r)}, reference ${want}`);
          if (lookupFlat(r) !== want) assert.fail(`r = ${r} ('${nudge}'): flat table ${lookupFlat(r)}, reference ${want}`);
        }
      }
      // A quotient that underflowed to ±0 comes from a nonzero x of that sign (x = 0 itself
      // never reaches the table): +0 is an x > 0, -0 an x < 0.
      assert.equal(lookupFlat(0), stateRule(map, Number.MIN_VALUE, nudge), 'underflowed positive quotient');
      assert.equal(lookupFlat(-0), stateRule(map, -Number.MIN_VALUE, nudge), 'underflowed negative quotient');
      assert.equal(view.getInt32(1024, true), nearestCode(map, 0), 'the code of 0');
    });
  }
});

describe('optimizer-state encoding of tiny values (every CPU kernel)', () => {
  const kernels: [string, () => CpuKernel][] = [['reference', createReferenceKernel]];
  if (wasmOk) kernels.push(['wasm', () => createWasmKernel()], ['wasm float32', () => createWasmKernel({ precision: 'float32' })]);
  const signedMap = createDynamicMap(true);
  const unsignedMap = createDynamicMap(false);
  const zeroU = unsignedMap.indexOf(0);
  const smallestU = unsignedMap.findIndex((v) => v > 0);
  const zeroS = signedMap.indexOf(0);
  const smallestNegS = zeroS - 1;

  for (const [name, kernel] of kernels) {
    it(`${name}: a positive v at 1e-9 of absmax or underflowing x/absmax takes the smallest positive code; v = 0 the code of 0`, async () => {
      // Adam, step 1: m = 0.1·g, v = 0.001·g² (float64, stored as float32). Element 0 sets
      // absmax (v = 1e33); element 1: v/absmax = 1e-9; element 2: v = 1e-17, so v/absmax = 1e-50
      // underflows to 0 in float32; element 3: g = 0; element 4: g = -1e-30, so v = 1e-63 is 0
      // in float32 while m/absmax = -1e-48 underflows to -0 (signed: smallest negative code).
      const g = new Float32Array(64);
      g.set([1e18, 1e18 * Math.sqrt(1e-9), 1e-7, 0, -1e-30]);
      const p = new Float32Array(64);
      const opt = new Adam8bit([p], { blockSize: 64, min8bitSize: 0 });
      opt.setKernel(kernel());
      await opt.step([g]);
      const [m, v] = opt.stateDict().tensors[0].states;
      assert.ok(m.format === 'blockwise8' && v.format === 'blockwise8');
      assert.equal(v.absmax[0], Math.fround(1e33));
      assert.deepEqual(Array.from(v.codes.subarray(0, 5)), [255, smallestU, smallestU, zeroU, zeroU], 'v codes');
      assert.deepEqual(Array.from(m.codes.subarray(0, 5)), [255, nearestCode(signedMap, Math.fround(Math.fround(0.1 * g[1]) / Math.fround(1e17))), zeroS, zeroS, smallestNegS], 'm codes');
      assert.ok(v.codes.subarray(5).every((c) => c === zeroU), 'zero gradients keep v at the code of 0');
    });
  }

  it('the public quantizeBlockwise stays plain nearest: a tiny positive value takes the code of 0', () => {
    const x = new Float32Array(64);
    x.set([1, 1e-9, 1e-45]);
    for (const q of [quantizeBlockwise(x, { map: unsignedMap, blockSize: 64 }), wasmOk ? wasmQuantizeBlockwise(x, unsignedMap, 64)! : null]) {
      if (q) assert.deepEqual(Array.from(q.codes.subarray(0, 4)), [255, zeroU, zeroU, zeroU]);
    }
  });
});

describe('the WebAssembly quantizer checks its input as quantizeBlockwise does (issue 13, unchecked helpers)', { skip: !wasmOk && 'WebAssembly SIMD/threads unavailable' }, () => {
  const map = createDynamicMap(true);
  it('refuses non-finite values, Float64Array and plain arrays with the reference\'s messages', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const x = new Float32Array(300).fill(0.5);
      x[137] = bad;
      assert.throws(() => quantizeBlockwise(x, { map, blockSize: 256 }), new RegExp(`x\\[137\\] = ${bad} is not finite`));
      assert.throws(() => wasmQuantizeBlockwise(x, map, 256), new RegExp(`wasmQuantizeBlockwise: x\\[137\\] = ${bad} is not finite`));
    }
    assert.throws(() => wasmQuantizeBlockwise(new Float64Array(300) as unknown as Float32Array, map, 256), /x must be a Float32Array, got Float64Array/);
    assert.throws(() => wasmQuantizeBlockwise([1, 2, 3] as unknown as Float32Array, map, 256), /x must be a Float32Array, got Array/);
    assert.throws(() => wasmDequantizeBlockwise([1, 2] as unknown as Uint8Array, new Float32Array(1), map, 256), /codes must be a Uint8Array/);
    assert.throws(() => wasmDequantizeBlockwise(new Uint8Array(2), [1] as unknown as Float32Array, map, 256), /absmax must be a Float32Array/);
  });
});
