/**
 * The WebAssembly kernel against the reference kernel (src/kernels/cpu/reference.ts), which is
 * the specification: same parameters and states, bit for bit, for every rule in 8 and 32 bits,
 * on random data with partial blocks, all-zero blocks, non-finite gradients, gradient scaling,
 * overflowing states, and on one thread or several.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam8bit, AdamW8bit, createReferenceKernel, LAMB8bit, Lion8bit, RULES, SGD8bit } from '../src/index.js';
import type { CpuKernel, Optimizer, StateStore, UpdateJob, UpdateRule } from '../src/index.js';
import { allocFloat32, createWasmKernel, isKernelMemory, wasmKernelsSupported } from '../src/kernels/cpu/index.js';
import { defaultOptions } from '../src/optim/options.js';
import { Blockwise8State, createState, Float32State } from '../src/optim/state.js';
import { EIGHT_BIT_CLASSES, rng, type RefHyper } from './helpers/float64-rules.js';
import { initUnfused, unfusedStep } from './helpers/unfused8bit.js';
import * as bitopt from '../src/index.js';

/** Values spread over many orders of magnitude, both signs, some exact zeros. */
function wide(n: number, rand: () => number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rand();
    a[i] = u < 0.03 ? 0 : (rand() < 0.5 ? -1 : 1) * scale * 10 ** (-8 * rand() ** 2);
  }
  return a;
}

/** Random but valid states: random float32 values stored through each store's own encoder. */
function randomStates(rule: UpdateRule, bits: 8 | 32, n: number, blockSize: number, rand: () => number): StateStore[] {
  return rule.states.map((sign, k) => {
    const s = createState(bits === 8 ? 'blockwise8' : 'float32', sign, n, blockSize);
    const values = wide(n, rand, k === 1 ? 1e-3 : 1e-2);
    if (sign === 'unsigned') for (let i = 0; i < n; i++) values[i] = Math.abs(values[i]);
    values.fill(0, blockSize, Math.min(n, 2 * blockSize)); // block 1 stays all-zero
    for (let start = 0; start < n; start += blockSize) {
      const len = Math.min(blockSize, n - start);
      s.store(start, len, values.slice(start, start + len));
    }
    return s;
  });
}

function cloneState(s: StateStore): StateStore {
  if (s instanceof Float32State) return new Float32State(s.sign, s.values.slice());
  const b = s as Blockwise8State;
  return new Blockwise8State(b.sign, b.blockSize, b.map, b.codes.slice(), b.absmax.slice());
}

function assertSameStates(a: StateStore[], b: StateStore[], label: string): void {
  assert.equal(a.length, b.length);
  a.forEach((sa, k) => {
    const sb = b[k];
    if (sa instanceof Float32State) {
      assert.ok(sb instanceof Float32State, `${label}: state ${k} format`);
      assertSameBits(sa.values, sb.values, `${label}: state ${k} values`);
    } else {
      const x = sa as Blockwise8State;
      const y = sb as Blockwise8State;
      assert.ok(y instanceof Blockwise8State, `${label}: state ${k} format`);
      assertSameBits(x.absmax, y.absmax, `${label}: state ${k} absmax`);
      const i = x.codes.findIndex((c, j) => c !== y.codes[j]);
      assert.equal(i, -1, `${label}: state ${k} code ${i}: reference ${x.codes[i]}, wasm ${y.codes[i]}`);
    }
  });
}

function assertSameBits(a: Float32Array, b: Float32Array, label: string): void {
  assert.equal(a.length, b.length, `${label}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  const i = ua.findIndex((v, j) => v !== ub[j]);
  assert.equal(i, -1, `${label}[${i}]: reference ${a[i]}, wasm ${b[i]}`);
}

interface Case {
  rule: string;
  bits: 8 | 32;
  n: number;
  blockSize: number;
  t: number;
  gradScale: number;
  hyper: Record<string, number | number[]>;
}

/** One step of `c` on both kernels from identical inputs; returns both sides. */
function runBoth(c: Case, wasm: CpuKernel, seed: number, normTolerance = 1e-12) {
  const rule = RULES[c.rule];
  const rand = rng(seed);
  const param = wide(c.n, rand, 1);
  const grad = wide(c.n, rand, 0.1);
  // Non-finite gradients, including in the partial last block.
  for (const i of [3, 200, c.n - 1]) grad[i] = [NaN, Infinity, -Infinity][i % 3];
  const states = randomStates(rule, c.bits, c.n, c.blockSize, rand);
  const h = { ...defaultOptions(rule), ...c.hyper };
  const job = (p: Float32Array, s: StateStore[]): UpdateJob => ({
    rule,
    param: p,
    grad,
    states: s,
    coefficients: rule.coefficients(h, c.t),
    gradScale: c.gradScale,
    blockSize: c.blockSize,
  });
  const ref = job(param.slice(), states.map(cloneState));
  const got = job(param.slice(), states.map(cloneState));
  const reference = createReferenceKernel();
  if (rule.usesTrustRatio) {
    const a = reference.directionNorms(ref) as { updateSq: number; paramSq: number };
    const b = wasm.directionNorms(got) as { updateSq: number; paramSq: number };
    // Same terms summed in another order (per block): equal to ~1e-15 relative.
    assert.ok(Math.abs(a.updateSq - b.updateSq) <= normTolerance * a.updateSq, `${c.rule}: updateSq ${a.updateSq} vs ${b.updateSq}`);
    assert.ok(Math.abs(a.paramSq - b.paramSq) <= normTolerance * a.paramSq, `${c.rule}: paramSq ${a.paramSq} vs ${b.paramSq}`);
    const trust = Math.min(1, (0.5 * Math.sqrt(a.paramSq)) / Math.sqrt(a.updateSq));
    ref.coefficients.trust = trust;
    got.coefficients.trust = trust;
  }
  reference.update(ref);
  assert.ok(!((wasm.update(got) as unknown) instanceof Promise), 'the wasm kernel answers synchronously');
  return { ref, got, param };
}

const wasmOk = wasmKernelsSupported();

describe('WebAssembly kernel vs the reference kernel', { skip: !wasmOk && 'WebAssembly SIMD/threads unavailable' }, () => {
  const hyper: Record<string, Record<string, number | number[]>> = {
    adam: { lr: 1e-2, weightDecay: 1e-2 },
    sgd: { lr: 1e-2, momentum: 0.9, weightDecay: 1e-3 },
    rmsprop: { lr: 1e-3, weightDecay: 1e-3 },
    adagrad: { lr: 1e-2, weightDecay: 1e-3 },
    lion: { lr: 1e-3, weightDecay: 1e-2 },
    ademamix: { lr: 1e-3, weightDecay: 1e-2 },
    lamb: { lr: 1e-2, weightDecay: 1e-2 },
    lars: { lr: 1e-2, weightDecay: 1e-3 },
  };
  const wasm = createWasmKernel({ threads: 1, precision: 'exact' });

  for (const rule of Object.keys(RULES)) {
    for (const bits of [8, 32] as const) {
      it(`${rule} ${bits}-bit: identical parameters and states (partial blocks, zero blocks, NaN/Inf grads)`, () => {
        let seed = 1;
        for (const [n, blockSize] of [[5 * 256 + 37, 256], [3 * 64 + 1, 64], [2 * 2048 + 6, 2048], [4099, 4096]]) {
          for (const t of [1, 4]) {
            const c: Case = { rule, bits, n, blockSize, t, gradScale: t === 4 ? 0.37 : 1, hyper: hyper[rule] };
            const { ref, got } = runBoth(c, wasm, seed++);
            const label = `${rule} ${bits}-bit n=${n} block=${blockSize} t=${t}`;
            assertSameBits(ref.param, got.param, `${label} params`);
            assertSameStates(ref.states, got.states, label);
            // Non-finite gradients: parameter unchanged, states zeroed (8-bit: decode to 0).
            for (const i of [3, 200, n - 1]) {
              for (const s of got.states) {
                const out = new Float32Array(blockSize);
                const start = Math.floor(i / blockSize) * blockSize;
                s.load(start, Math.min(blockSize, n - start), out);
                assert.equal(out[i - start], 0, `${label}: state of element ${i} with a non-finite gradient`);
              }
            }
          }
        }
      });
    }
  }

  it('an overflowing 8-bit state saturates exactly like the reference', () => {
    for (const rule of ['adam', 'adagrad', 'rmsprop']) {
      const c: Case = { rule, bits: 8, n: 700, blockSize: 256, t: 2, gradScale: 1, hyper: hyper[rule] };
      const rand = rng(9);
      const r = RULES[rule];
      const grad = wide(c.n, rand, 1);
      grad[10] = 3e30; // g² overflows float32
      const states = randomStates(r, 8, c.n, c.blockSize, rand);
      const h = { ...defaultOptions(r), ...c.hyper };
      const mk = (s: StateStore[], p: Float32Array): UpdateJob => ({ rule: r, param: p, grad, states: s, coefficients: r.coefficients(h, 2), gradScale: 1, blockSize: 256 });
      const p0 = wide(c.n, rand, 1);
      const a = mk(states.map(cloneState), p0.slice());
      const b = mk(states.map(cloneState), p0.slice());
      createReferenceKernel().update(a);
      wasm.update(b);
      assertSameBits(a.param, b.param, `${rule} params`);
      assertSameStates(a.states, b.states, rule);
      const v = b.states[b.states.length - 1] as Blockwise8State;
      assert.ok(Number.isFinite(v.absmax[0]) && v.absmax[0] > 1e38, `${rule}: absmax saturates at the float32 maximum`);
    }
  });

  it('encodes -0, underflowing quotients and tiny values exactly like the reference (both precisions)', () => {
    // SGD's first step stores m = g + wd·p: g = -0 with p < 0 gives m = -0 (the code of 0);
    // a tiny negative m next to a huge one has x / absmax underflow to -0 (the sign-kept code).
    const n = 300;
    const grad = new Float32Array(n);
    const param = new Float32Array(n).fill(-1);
    for (let i = 0; i < n; i++) grad[i] = [-0, 0, -1e-45, 1e-45, -3e-39, 2e-38, -1e-30, 5e29][i % 8];
    grad[5] = 3e38;
    grad[260] = -1e-40;
    for (const precision of ['exact', 'float32'] as const) {
      const rule = RULES.sgd;
      const mk = (): UpdateJob => ({
        rule,
        param: param.slice(),
        grad,
        states: [createState('blockwise8', 'signed', n, 256)],
        coefficients: rule.coefficients({ ...defaultOptions(rule), lr: 1e-2, momentum: 0.9 }, 1),
        gradScale: 1,
        blockSize: 256,
      });
      const a = mk();
      const b = mk();
      createReferenceKernel().update(a);
      createWasmKernel({ threads: 1, precision }).update(b);
      assertSameStates(a.states, b.states, `sgd ${precision}`);
    }
  });

  it('runs unknown rules through the reference', () => {
    const custom: UpdateRule = { ...RULES.sgd, name: 'sgd' }; // same name, not the built-in object
    const p = new Float32Array([1, 2, 3]);
    const job: UpdateJob = {
      rule: custom,
      param: p,
      grad: new Float32Array([1, 1, 1]),
      states: [createState('float32', 'signed', 3, 256)],
      coefficients: custom.coefficients({ ...defaultOptions(custom), lr: 0.5 }, 1),
      gradScale: 1,
      blockSize: 256,
    };
    wasm.update(job);
    assert.deepEqual([...p], [0.5, 1.5, 2.5]);
  });
});

describe("WebAssembly kernel, precision 'float32' (opt-in)", { skip: !wasmOk && 'WebAssembly SIMD/threads unavailable' }, () => {
  const fast = createWasmKernel({ threads: 1, precision: 'float32' });
  for (const rule of Object.keys(RULES)) {
    it(`${rule}: identical states and codes, parameters within float32 rounding of the reference`, () => {
      let seed = 5;
      for (const bits of [8, 32] as const) {
        for (const [n, blockSize] of [[3 * 256 + 37, 256], [3 * 64 + 1, 64], [4099, 4096]]) {
          for (const t of [1, 3]) {
            const c: Case = { rule, bits, n, blockSize, t, gradScale: t === 3 ? 0.37 : 1, hyper: { lr: 1e-3, weightDecay: 1e-3 } };
            const { ref, got, param } = runBoth(c, fast, seed++, 1e-5);
            const label = `${rule} ${bits}-bit n=${n} block=${blockSize} t=${t}`;
            // States are computed in float64 as the reference does: bit for bit, codes included
            // (LAMB/LARS: their trust ratio is the reference's here, so the same holds).
            assertSameStates(ref.states, got.states, label);
            // Parameters: p - lr·dir with dir in float32 arithmetic (a few float32 roundings):
            // within 2 ulps of p plus 8 ulps of the step |lr·dir| the reference took.
            ref.param.forEach((v, i) => {
              const tol = 2 * 2 ** -24 * Math.abs(v) + 8 * 2 ** -24 * Math.abs(v - param[i]) + 1e-38;
              assert.ok(Math.abs(v - got.param[i]) <= tol, `${label} p[${i}]: ${v} vs ${got.param[i]}`);
            });
          }
        }
      }
    });
  }

  it('edge inputs (denormal, huge, NaN/Inf gradients): identical codes and parameters within 1e-6 of the unfused reference', () => {
    const rules = EIGHT_BIT_CLASSES;
    // Tiny values whose float32 products land on a rounding tie (the case plain float32
    // arithmetic got wrong: 2^-150-ish interpolations and the sign-keeping code nudge).
    const specials = [0, NaN, Infinity, -Infinity, 1e-40, -1e-40, 7.006492321624087e-46, -7.006492321624087e-46, -6.305843089461678e-45, 1.4e-45, 1e12, -1e12];
    for (const [rule, [name, options]] of Object.entries(rules)) {
      const rand = rng(11);
      for (const [n, blockSize] of [[97, 64], [257, 256], [1009, 64]]) {
        const pool = Array.from({ length: 64 }, () => (rand() < 0.3 ? specials[Math.floor(rand() * specials.length)] : (rand() - 0.5) * 200 * rand() ** 6));
        const p = Float32Array.from({ length: n }, (_, i) => Math.sin(3 + i));
        const pRef = p.slice();
        const opt = new (bitopt as unknown as Record<string, new (p: Float32Array[], o: Record<string, unknown>) => Optimizer>)[name]([p], { ...options, blockSize, min8bitSize: 0 });
        opt.setKernel(fast);
        const d = RULES[rule].defaults as Record<string, number | number[]>;
        const h = { ...d, betas: d.betas as number[], ...options } as unknown as RefHyper;
        const ref = initUnfused(rule, n, blockSize);
        for (let t = 1; t <= 3; t++) {
          const g = Float32Array.from({ length: n }, (_, i) => pool[(i * 7 + t * 13) % pool.length]);
          const before = p.slice();
          opt.stepSync([g]);
          unfusedStep(rule, h, ref, pRef, g, blockSize);
          for (let i = 0; i < n; i++) if (!Number.isFinite(g[i])) assert.equal(p[i], before[i], `${name}: element ${i} with gradient ${g[i]} must not move`);
          opt.stateDict().tensors[0].states.forEach((st, k) => {
            assert.ok(st.format === 'blockwise8');
            const i = st.codes.findIndex((v, j) => v !== ref.codes[k][j]);
            assert.equal(i, -1, `${name} n=${n} t=${t}: state ${k} code ${i}: ${st.codes[i]} vs ${ref.codes[k][i]}`);
          });
        }
        for (let i = 0; i < n; i++) assert.ok(Math.abs(p[i] - pRef[i]) <= 1e-6 * (1 + Math.abs(pRef[i])), `${name} n=${n} param ${i}: ${p[i]} vs ${pRef[i]}`);
      }
    }
  });
});

describe('WebAssembly kernel threads and memory', { skip: !wasmOk && 'WebAssembly SIMD/threads unavailable' }, () => {
  it('several threads give the same bytes as one thread (update and trust-ratio norms)', async () => {
    const one = createWasmKernel({ threads: 1, precision: 'exact' });
    const three = createWasmKernel({ threads: 3, minParallelSize: 1024, precision: 'exact' });
    await three.ready();
    for (const rule of ['adam', 'lamb', 'lion']) {
      for (const bits of [8, 32] as const) {
        const c: Case = { rule, bits, n: 50_000 + 13, blockSize: 256, t: 3, gradScale: 1, hyper: { lr: 1e-3 } };
        const a = runBoth(c, one, 42).got;
        const b = runBoth(c, three, 42).got;
        assertSameBits(a.param, b.param, `${rule} ${bits}-bit params`);
        assertSameStates(a.states, b.states, `${rule} ${bits}-bit`);
        if (rule === 'lamb') assert.deepEqual(three.directionNorms(b), one.directionNorms(a), 'norms independent of threads');
      }
    }
  });

  it("never swaps a job's states: the optimizer places them (placeStates), a foreign job's stores are written back", () => {
    const wasm = createWasmKernel({ threads: 1, precision: 'exact' });
    const rule = RULES.adam;
    const arrays = (s: StateStore) => (s instanceof Blockwise8State ? [s.codes, s.absmax] : [(s as Float32State).values]);
    for (const bits of [8, 32] as const) {
      const rand = rng(3);
      const n = 1000;
      const param = wide(n, rand, 1);
      const grad = wide(n, rand, 0.1);
      const states = randomStates(rule, bits, n, 256, rand);
      const job = (s: StateStore[]): UpdateJob => ({ rule, param: param.slice(), grad, states: s, coefficients: rule.coefficients({ ...defaultOptions(rule), lr: 1e-2 }, 2), gradScale: 1, blockSize: 256 });
      const ref = job(states.map(cloneState));
      createReferenceKernel().update(ref);
      const foreign = states.map(cloneState);
      const before = foreign.slice();
      const onWasm = job(foreign);
      wasm.update(onWasm);
      assert.ok(onWasm.states === foreign && foreign.every((s, k) => s === before[k]), 'the job keeps its own array and store objects');
      assert.ok(!foreign.some((s) => arrays(s).some(isKernelMemory)), 'the foreign stores stay where they were');
      assertSameStates(ref.states, foreign, `adam ${bits}-bit written back`);
      assertSameBits(ref.param, onWasm.param, `adam ${bits}-bit params`);
      // placeStates moves stores into kernel memory once and is the identity afterwards.
      const placed = wasm.placeStates!(foreign);
      assert.ok(placed !== foreign && placed.every((s) => arrays(s).every(isKernelMemory)), 'placed stores live in kernel memory');
      assert.equal(wasm.placeStates!(placed), placed, 'placing placed stores changes nothing');
      assertSameStates(foreign, placed, 'placed stores hold the same values');
    }
  });

  it('optimizers on the default (wasm) kernel match the reference kernel step for step, with zero-copy params', async () => {
    const make: [string, (p: Float32Array[]) => Optimizer][] = [
      ['Adam8bit', (p) => new Adam8bit(p, { lr: 1e-2 })],
      ['AdamW8bit', (p) => new AdamW8bit(p, { lr: 1e-2, weightDecay: 0.1, percentileClipping: 50 })],
      ['SGD8bit', (p) => new SGD8bit(p, { lr: 1e-2, momentum: 0.9 })],
      ['Lion8bit', (p) => new Lion8bit(p, { lr: 1e-3 })],
      ['LAMB8bit', (p) => new LAMB8bit(p, { lr: 1e-2 })],
    ];
    for (const [name, ctor] of make) {
      const rand = rng(7);
      const init = [wide(300_001, rand, 1), wide(5000, rand, 1), wide(100, rand, 1)];
      const shared = init.map((x) => {
        const a = allocFloat32(x.length);
        a.set(x);
        return a;
      });
      assert.ok(shared.every(isKernelMemory));
      const plain = init.map((x) => x.slice());
      const fast = ctor(shared);
      fast.setKernel(createWasmKernel({ precision: 'exact' })); // the bit-for-bit mode
      const ref = ctor(plain);
      ref.setKernel(createReferenceKernel());
      for (let t = 0; t < 4; t++) {
        const grads = init.map((x) => wide(x.length, rand, 0.1));
        grads[0][17] = NaN;
        await fast.step(grads);
        await ref.step(grads);
      }
      if (name === 'LAMB8bit') {
        // The trust ratio sums the same terms in another order: parameters agree to a few ulps.
        shared.forEach((p, i) => p.forEach((v, j) => assert.ok(Math.abs(v - plain[i][j]) <= 4e-7 * Math.abs(plain[i][j]) + 1e-30, `${name} p${i}[${j}]`)));
        continue;
      }
      shared.forEach((p, i) => assertSameBits(plain[i], p, `${name} param ${i}`));
      assert.deepEqual(fast.stateDict(), ref.stateDict(), `${name}: identical state dicts`);
    }
  });

  it('stages plain (non-shared) parameter arrays and updates them in place', async () => {
    const p = new Float32Array(10_000).fill(1);
    const opt = new Adam8bit([p]);
    opt.setKernel(createWasmKernel({ threads: 1, precision: 'exact' }));
    await opt.step([new Float32Array(10_000).fill(0.5)]);
    const dict = opt.stateDict();
    assert.ok(p.every((v) => v < 1), 'the plain parameter array was updated in place');
    assert.equal(dict.tensors[0].states.length, 2);
    assert.equal(opt.stateBytes(), 2 * 10_000 + 2 * 4 * Math.ceil(10_000 / 256));
  });
});
