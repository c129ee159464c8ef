/**
 * WebAssembly block-wise quantize/dequantize against the reference functions (src/quant): the
 * same codes and absmax for every input, including values exactly at and next to every
 * rounding threshold of the maps, partial blocks and all-zero blocks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDynamicMap, createLinearMap, dequantizeBlockwise, nearestCode, quantizeBlockwise } from '../src/index.js';
import { wasmDequantizeBlockwise, wasmKernelsSupported, wasmQuantizeBlockwise } from '../src/kernels/cpu/index.js';
import { buildTable } from '../src/kernels/cpu/wasm-tables.js';
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

  it('the lookup table reproduces nearestCode and the sign nudge for every float32 in [-1, 1] sampled densely', () => {
    const map = createDynamicMap(true);
    for (const keepSign of [false, true]) {
      const table = buildTable(map, keepSign)!;
      const view = new DataView(table.buffer);
      const KLO = 0;
      const CELLS = 0x3f80 - KLO + 1;
      const T_CELL = 1040;
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
      // Every 2^9-th float32 bit pattern with magnitude up to 1 (about 2 million values).
      for (let b = 0; b <= 0x3f800000; b += 512) {
        for (const sign of [0, 0x80000000]) {
          u32[0] = (b | sign) >>> 0;
          const r = f32[0];
          if (r === 0) continue; // zero takes a separate path (the code of 0)
          let want = nearestCode(map, r);
          if (keepSign) {
            if (r > 0 && map[want] < 0) want++;
            else if (r < 0 && map[want] >= 0) want--;
          }
          if (lookup(r) !== want) assert.fail(`r = ${r} (keepSign ${keepSign}): table ${lookup(r)}, reference ${want}`);
        }
      }
    }
  });
});
