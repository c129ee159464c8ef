/**
 * The 4-bit update encoder's cell table (src/kernels/cpu/wasm-tables.ts `buildTable4`, used by
 * assembly/codecs/blockwise4.ts, through blockwise8.ts `quant4f`): its codes equal the reference codec's
 * (nearestCode + nudgeCode, src/codecs/blockwise4.ts) at and next to every threshold of both
 * 4-bit maps, on underflowed quotients and at ±1; and the kernel, run on new states chosen to
 * land there, writes the reference kernel's codes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Blockwise4State, createReferenceKernel, nearestCode, RULES, type UpdateJob } from '../src/index.js';
import { nudgeCode } from '../src/quant/blockwise.js';
import { stateMap4, stateNudge4 } from '../src/codecs/blockwise4.js';
import { createWasmKernel, wasmKernelsSupported } from '../src/kernels/cpu/index.js';
import { buildTable4 } from '../src/kernels/cpu/wasm-tables.js';
import { QUANT4_TABLE } from '../src/generated/kernel-layout.js';
import { defaultOptions } from '../src/optim/options.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);
const fromBits = (b: number) => ((u32[0] = b >>> 0), f32[0]);

/** x and its float32 neighbours within 3 ulps. */
function around(x: number): number[] {
  const b = bitsOf(x);
  return [-3, -2, -1, 0, 1, 2, 3].map((d) => fromBits(b + d)).filter(Number.isFinite);
}

/** Probe quotients in [-1, 1] for `map`: every midpoint of neighbouring values and its neighbours, both signs, tiny and extreme values. */
function probes(map: Float32Array): number[] {
  const out = [1, -1, 5e-45, -5e-45, 1e-40, -1e-40, 2 ** -30, -(2 ** -30)];
  for (let c = 0; c + 1 < map.length; c++) {
    const mid = Math.fround((map[c] + map[c + 1]) / 2);
    for (const v of around(mid)) out.push(v, -v);
  }
  for (const v of map) for (const w of around(v)) out.push(w, -w);
  return out.filter((v) => Math.abs(v) <= 1);
}

/** The reference code of a nonzero x with quotient r (codec: nearest code, then the nudge by x's sign). */
function referenceCode(map: Float32Array, r: number, negative: boolean, sign: 'signed' | 'unsigned'): number {
  const c = nearestCode(map, r);
  const nudge = stateNudge4(sign);
  return nudge === 'none' ? c : nudgeCode(map, c, negative ? -1 : 1, nudge);
}

/** What quant4f computes from the 4-bit table, written out in JS: cell lookup, one integer compare, one step. */
function tableCode(table: Uint8Array, r: number): number {
  const view = new DataView(table.buffer);
  const b = bitsOf(r);
  const e = view.getUint32(QUANT4_TABLE.flat + 4 * (b >>> 16), true);
  const above = (b & 0xffff) > (e & 0xffff);
  const neg = b >>> 31 === 1;
  return (e >>> 16) + (above ? (neg ? -1 : 1) : 0);
}

describe('4-bit cell table', () => {
  for (const sign of ['signed', 'unsigned'] as const) {
    it(`${sign} map: the table gives the reference code at every probe`, () => {
      const map = stateMap4(sign);
      const table = buildTable4(map, sign);
      assert.equal(new DataView(table.buffer).getInt32(QUANT4_TABLE.hasFlat, true), 1, 'the default map has a cell table');
      let checked = 0;
      // ±0: quotients of nonzero x that underflowed (x = ±0 itself never reaches the table).
      for (const r of [0, -0, ...probes(map)]) {
        const negative = bitsOf(r) >>> 31 === 1;
        // Unsigned states never have a negative quotient.
        if (sign === 'unsigned' && negative) continue;
        assert.equal(tableCode(table, r), referenceCode(map, r, negative, sign), `${sign} r=${r}`);
        checked++;
      }
      // Every 4093rd float32 in [0, 1] (and its negative for signed maps).
      for (let b = 0; b <= 0x3f800000; b += 4093) {
        for (const r of sign === 'signed' ? [fromBits(b), -fromBits(b)] : [fromBits(b)]) {
          assert.equal(tableCode(table, r), referenceCode(map, r, bitsOf(r) >>> 31 === 1, sign), `${sign} r=${r}`);
          checked++;
        }
      }
      assert.ok(checked > 200_000);
    });
  }

  it('a map with two values within one cell gets no table (the kernel keeps the compare encoder)', () => {
    const map = Float32Array.from({ length: 16 }, (_, i) => (i + 1) / 16);
    // Thresholds 0.90005 and 0.90015 both fall in the cell [0.8984375, 0.90234375).
    map.set([0.9, 0.9001, 0.9002].map(Math.fround), 12);
    const table = buildTable4(map, 'unsigned');
    assert.equal(new DataView(table.buffer).getInt32(QUANT4_TABLE.hasFlat, true), 0);
  });
});

describe('4-bit update encoder in the kernel', { skip: !wasmKernelsSupported() && 'WebAssembly SIMD/threads unavailable' }, () => {
  // Adam with betas (0, 0) from zero states: the new states are m = g and v = f32(g²) exactly,
  // and a gradient of magnitude 1 in every block makes absmax 1, so r = x: the probes reach the
  // encoder unchanged.
  it('Adam4bit codes equal the reference kernel at every threshold probe (both precisions)', () => {
    const rule = RULES.adam;
    const block = 128;
    const g: number[] = [];
    for (const r of probes(stateMap4('signed'))) g.push(r);
    // v = g²: square roots of the unsigned map's threshold neighbours (to float32 rounding of g).
    for (const r of probes(stateMap4('unsigned'))) if (r > 0) g.push(Math.fround(Math.sqrt(r)));
    const n = (Math.ceil(g.length / (block - 1)) + 1) * block;
    const grad = new Float32Array(n);
    for (let i = 0, j = 0; i < n; i++) grad[i] = i % block === 0 ? (i % (2 * block) ? -1 : 1) : (g[j++ % g.length] ?? 0);
    // One more block whose absmax 1e30 makes the tiny values' quotients underflow to ±0.
    grad.set([1e30, 5e-45, -5e-45, 1e-40, -1e-40, 3, -3, 0, -0].map(Math.fround), n - block);
    const param = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const fresh = () => (['signed', 'unsigned'] as const).map((s) => new Blockwise4State(s, block, stateMap4(s), new Uint8Array(n / 2), new Float32Array(n / block), n));
    const coefficients = rule.coefficients({ ...defaultOptions(rule), lr: 1e-2, betas: [0, 0] }, 1);
    const job = (): UpdateJob => ({ rule, param: param.slice(), grad, states: fresh(), coefficients, gradScale: 1, blockSize: block });
    const ref = job();
    createReferenceKernel().update(ref);
    for (const precision of ['exact', 'float32'] as const) {
      const got = job();
      createWasmKernel({ threads: 1, precision }).update(got);
      for (let k = 0; k < 2; k++) {
        const a = ref.states[k] as Blockwise4State;
        const b = got.states[k] as Blockwise4State;
        assert.deepEqual(Array.from(b.absmax), Array.from(a.absmax), `${precision} state ${k} absmax`);
        const i = a.codes.findIndex((c, j) => c !== b.codes[j]);
        assert.equal(i, -1, `${precision} state ${k} byte ${i}: reference ${a.codes[i]}, wasm ${b.codes[i]}`);
      }
    }
  });
});
