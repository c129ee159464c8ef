/**
 * The WebAssembly kernel encodes 4-bit unsigned states on the zero-free linear map by
 * arithmetic (assembly/codecs/blockwise4.ts `linear4`: clamp(ceil(16·r − 1.5), 0, 15)) instead
 * of the cell table. Run on second moments chosen to land on and next to every midpoint of the
 * map (and on a dense sweep), it must write the reference kernel's codes, in both precisions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Blockwise4State, createReferenceKernel, RULES, type UpdateJob } from '../src/index.js';
import { stateMap4 } from '../src/codecs/blockwise4.js';
import { createWasmKernel, wasmKernelsSupported } from '../src/kernels/cpu/index.js';
import { defaultOptions } from '../src/optim/options.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);
const fromBits = (b: number) => ((u32[0] = b >>> 0), f32[0]);

/** A float32 g whose float32 square is exactly t, if one lies within 8 ulps of sqrt(t). */
function rootOf(t: number): number | undefined {
  const s = bitsOf(Math.fround(Math.sqrt(t)));
  for (let d = -8; d <= 8; d++) {
    const g = fromBits(s + d);
    if (Math.fround(g * g) === t) return g;
  }
  return undefined;
}

describe('4-bit linear-map encoder in the kernel', { skip: !wasmKernelsSupported() && 'WebAssembly SIMD/threads unavailable' }, () => {
  it('Adam4bit second-moment codes equal the reference kernel at every midpoint probe and on a sweep (both precisions)', () => {
    const map = stateMap4('unsigned');
    map.forEach((v, i) => assert.equal(v, (i + 1) / 16, `the unsigned map is the linear one (value ${i})`));
    // Targets for v = g²: each midpoint (k + 1.5)/16 (where the code steps) and 3 float32s either side, and each map value.
    const targets: number[] = [];
    for (let k = 0; k < 15; k++) for (let d = -3; d <= 3; d++) targets.push(fromBits(bitsOf((k + 1.5) / 16) + d));
    for (const v of map) for (let d = -1; d <= 1; d++) targets.push(fromBits(bitsOf(v) + d));
    const g: number[] = [];
    for (const t of targets) {
      const root = t <= 1 ? rootOf(t) : undefined;
      if (root !== undefined) g.push(root);
    }
    const exactProbes = g.length;
    assert.ok(exactProbes >= 60, `${exactProbes} probes land exactly on their target`);
    for (let b = bitsOf(1e-4); b < bitsOf(1); b += 4099) g.push(fromBits(b)); // v from 1e-8 to 1
    // Blocks of 128 whose first element is 1, so both states' absmax is 1 and r = v exactly.
    const block = 128;
    const n = Math.ceil(g.length / (block - 1)) * block;
    const grad = new Float32Array(n);
    for (let i = 0, j = 0; i < n; i++) grad[i] = i % block === 0 ? 1 : (g[j++] ?? 0);
    const rule = RULES.adam;
    // Betas (0, 0) from zero states: m = g and v = f32(g·g).
    const coefficients = rule.coefficients({ ...defaultOptions(rule), lr: 1e-2, betas: [0, 0] }, 1);
    const fresh = () => (['signed', 'unsigned'] as const).map((s) => new Blockwise4State(s, block, stateMap4(s), new Uint8Array(n / 2), new Float32Array(n / block), n));
    const job = (): UpdateJob => ({ rule, param: new Float32Array(n), grad, states: fresh(), coefficients, gradScale: 1, blockSize: block });
    const ref = job();
    createReferenceKernel().update(ref);
    const a = ref.states[1] as Blockwise4State;
    assert.ok(a.absmax.every((x) => x === 1));
    for (const precision of ['exact', 'float32'] as const) {
      const got = job();
      createWasmKernel({ threads: 1, precision }).update(got);
      const b = got.states[1] as Blockwise4State;
      assert.deepEqual(Array.from(b.absmax), Array.from(a.absmax), `${precision} absmax`);
      const i = a.codes.findIndex((c, j) => c !== b.codes[j]);
      assert.equal(i, -1, `${precision} byte ${i}: reference ${a.codes[i]}, wasm ${b.codes[i]} (g ${grad[2 * i]}, ${grad[2 * i + 1]})`);
    }
  });
});
