/**
 * Reliability: every backend agrees with the reference kernel on fuzzed edge inputs
 * (fast-check). For every rule, 8- and 32-bit: sizes 0, 1, blockSize−1, blockSize,
 * blockSize+1, primes and a large one; parameters and gradients huge, tiny, denormal, all-zero
 * blocks, mixed signs, NaN/±Inf gradient elements. Each step starts every backend from the
 * reference's parameters and state dict, so one fused step is compared at a time:
 *   - wasm 'exact' (float64 maths) must equal the reference bit for bit (LAMB/LARS: within
 *     float32 rounding, their norms are summed in another order);
 *   - wasm 'float32' and WebGPU (SwiftShader): parameters within float32 rounding of the
 *     update, 8-bit codes equal or one apart (ties), absmax / float32 states within rounding.
 * And for every backend: an element with a non-finite gradient keeps its parameter exactly and
 * its states read back as 0; nothing becomes NaN.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as bitopt from '../src/index.js';
import type { CpuKernel, Optimizer, StateDict, StateEntry } from '../src/index.js';
import { createWasmKernel, wasmKernelsSupported } from '../src/kernels/cpu/index.js';
import { createGpuTensor, readGpuTensor, writeGpuTensor } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { createWebgpuOptimizer, type OptimizerClass } from '../src/kernels/webgpu/optimizer.js';
import './helpers/swiftshader.js';

type AnyClass = OptimizerClass<any>;
const RULE_CLASSES: [string, AnyClass, AnyClass, Record<string, unknown>][] = [
  ['adam', bitopt.Adam8bit, bitopt.Adam, { lr: 1e-2, weightDecay: 0.01 }],
  ['sgd', bitopt.SGD8bit, bitopt.SGD, { lr: 1e-2, momentum: 0.9 }],
  ['rmsprop', bitopt.RMSprop8bit, bitopt.RMSprop, { lr: 1e-3 }],
  ['adagrad', bitopt.Adagrad8bit, bitopt.Adagrad, { lr: 1e-2 }],
  ['lion', bitopt.Lion8bit, bitopt.Lion, { lr: 1e-3, weightDecay: 0.1 }],
  ['ademamix', bitopt.AdEMAMix8bit, bitopt.AdEMAMix, { lr: 1e-3 }],
  ['lamb', bitopt.LAMB8bit, bitopt.LAMB, { lr: 1e-2, maxUnorm: 0.5 }],
  ['lars', bitopt.LARS8bit, bitopt.LARS, { lr: 1e-2 }],
  ['radam', bitopt.RAdam8bit, bitopt.RAdam, { lr: 1e-2, betas: [0.9, 0.9] }],
];

/** Gradient elements: ordinary, plus the edges (zero, denormal, tiny, huge, overflowing when squared, NaN, ±Inf). */
const gradValue = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: -10, max: 10, noNaN: true }) },
  { weight: 1, arbitrary: fc.double({ min: -1, max: 1, noNaN: true }).map((x) => x * 1e-38) },
  { weight: 2, arbitrary: fc.constantFrom(0, -0, 1e-40, -1e-45, 1e-30, -1e-20, 1e15, -1e15, 1e25, NaN, Infinity, -Infinity) },
);

interface Input {
  blockSize: number;
  n: number;
  paramScale: number;
  pool: number[];
  seed: number;
  zeroBlock: number;
}

function input(sizes: (bs: number) => number[], blockSizes: number[]): fc.Arbitrary<Input> {
  return fc.constantFrom(...blockSizes).chain((blockSize) =>
    fc.record({
      blockSize: fc.constant(blockSize),
      n: fc.constantFrom(...sizes(blockSize)),
      paramScale: fc.constantFrom(1, 1e-3, 1e-30, 1e20),
      pool: fc.array(gradValue, { minLength: 1, maxLength: 64 }),
      seed: fc.integer({ min: 0, max: 1 << 20 }),
      zeroBlock: fc.integer({ min: 0, max: 3 }),
    }),
  );
}

function params0(x: Input): Float32Array {
  return Float32Array.from({ length: x.n }, (_, i) => x.paramScale * Math.sin(x.seed + 1.3 * i));
}

/** Step t's gradient: pool values in a scrambled order, one block all zeros. */
function gradient(x: Input, t: number): Float32Array {
  const g = Float32Array.from({ length: x.n }, (_, i) => x.pool[(i * 7 + t * 13 + x.seed) % x.pool.length]);
  g.fill(0, x.zeroBlock * x.blockSize, (x.zeroBlock + 1) * x.blockSize);
  return g;
}

/** Smallest normal float32: GPUs may flush smaller (denormal) values to zero, WGSL allows it. */
const TINY = 2 ** -126;
const close = (a: number, b: number, rel: number, abs: number) => a === b || Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + abs;

/** The value a state entry holds for element i (0 means reset). */
function stateValue(s: StateEntry, i: number): number {
  return s.format === 'float32' ? s.values[i] : s.map[s.codes[i]] * s.absmax[Math.floor(i / s.blockSize)];
}

/** `got` against the reference's state after the same step (see the header for the tolerances). */
function compareStates(label: string, got: StateDict, want: StateDict): void {
  const [g, w] = [got.tensors[0], want.tensors[0]];
  assert.equal(g.step, w.step, `${label}: step`);
  assert.equal(g.states.length, w.states.length, `${label}: state count`);
  g.states.forEach((gs, k) => {
    const ws = w.states[k];
    assert.equal(gs.format, ws.format, `${label}: state ${k} format`);
    if (gs.format === 'blockwise8' && ws.format === 'blockwise8') {
      for (let b = 0; b < ws.absmax.length; b++) {
        assert.ok(close(gs.absmax[b], ws.absmax[b], 2e-6, TINY), `${label}: state ${k} absmax ${b}: ${gs.absmax[b]} vs ${ws.absmax[b]}`);
      }
      for (let i = 0; i < ws.codes.length; i++) {
        const b = Math.floor(i / ws.blockSize);
        if (ws.absmax[b] < TINY || gs.absmax[b] < TINY) continue; // a denormal block: its codes scale nothing above TINY
        assert.ok(Math.abs(gs.codes[i] - ws.codes[i]) <= 1, `${label}: state ${k} code ${i}: ${gs.codes[i]} vs ${ws.codes[i]}`);
      }
    } else if (gs.format === 'float32' && ws.format === 'float32') {
      let scale = 0;
      for (const v of ws.values) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
      // 2·TINY: a state computed from flushed denormals (SGD's m = 0.9·m + g with g ≈ 6e-39) can
      // land just above the smallest normal in the reference and at 0 on the GPU.
      for (let i = 0; i < ws.values.length; i++) {
        assert.ok(close(gs.values[i], ws.values[i], 2e-6, scale * 1e-7 + 2 * TINY), `${label}: state ${k}[${i}]: ${gs.values[i]} vs ${ws.values[i]}`);
      }
    }
  });
}

/** Nonzero and below 2^-100: float32 intermediates of such a value (0.1·g, g², …) are denormal. */
const isDenormal = (x: number) => x !== 0 && Math.abs(x) < 2 ** -100;

/**
 * Whether element i's gradient or (pre-step) state is in or near the denormal range: flushed to
 * zero on a GPU, a few significant bits in float32 arithmetic, so e.g. Lion's sign() or
 * Adagrad's lr·g/eps legitimately differ there (docs/reliability.md).
 */
function touchedByDenormals(i: number, g: Float32Array, dict: StateDict | null): boolean {
  return isDenormal(g[i]) || (dict?.tensors[0].states.some((s) => isDenormal(stateValue(s, i))) ?? false);
}

function compareParams(label: string, got: Float32Array, want: Float32Array, before: Float32Array, skip: (i: number) => boolean): void {
  for (let i = 0; i < want.length; i++) {
    if (skip(i)) continue;
    const moved = Math.abs(want[i] - before[i]);
    assert.ok(close(got[i], want[i], 3e-7, 1e-4 * moved + 1e-36), `${label}: param ${i}: ${got[i]} vs ${want[i]} (was ${before[i]})`);
  }
}

/** Non-finite gradient elements: parameter exactly unchanged and every state 0, on every backend. */
function checkNonFinite(label: string, g: Float32Array, before: Float32Array, after: Float32Array, dict: StateDict): void {
  for (let i = 0; i < g.length; i++) {
    assert.ok(!Number.isNaN(after[i]), `${label}: param ${i} is NaN`);
    if (Number.isFinite(g[i])) continue;
    assert.ok(Object.is(after[i], before[i]), `${label}: param ${i} with gradient ${g[i]} moved: ${before[i]} -> ${after[i]}`);
    dict.tensors[0].states.forEach((s, k) => assert.equal(stateValue(s, i), 0, `${label}: state ${k} of element ${i} (gradient ${g[i]}) not reset`));
  }
  for (const s of dict.tensors[0].states) {
    if (s.format !== 'float32') assert.ok(s.absmax.every((a) => Number.isFinite(a) && a >= 0), `${label}: absmax finite`);
    // g² beyond float32 overflows a float32 second moment to +Infinity (its update is then 0).
    else assert.ok(s.values.every((v) => Number.isFinite(v) || (s.sign === 'unsigned' && v === Infinity)), `${label}: float32 state finite`);
  }
}

/** A backend that can take one step from a given (param, state dict). */
interface Backend {
  name: string;
  exact: boolean;
  /** Float32 arithmetic (LAMB/LARS norms over- and underflow outside float32's range). */
  float32: boolean;
  /** Flushes denormals to zero (GPUs may; WGSL allows it). */
  ftz: boolean;
  step(before: Float32Array, dict: StateDict | null, g: Float32Array): Promise<{ param: Float32Array; dict: StateDict }>;
  close(): void;
}

function cpuBackend(name: string, cls: AnyClass, options: Record<string, unknown>, n: number, kernel: CpuKernel, exact: boolean, float32 = false): Backend {
  const p = new Float32Array(n);
  const opt: Optimizer<any> = new cls([p], options);
  opt.setKernel(kernel);
  return {
    name,
    exact,
    float32,
    ftz: false,
    async step(before, dict, g) {
      p.set(before);
      if (dict) opt.loadStateDict(dict);
      await opt.step([g]);
      return { param: p.slice(), dict: opt.stateDict() };
    },
    close() {},
  };
}

/**
 * Inputs whose LAMB/LARS norms stay inside float32's range (||p||², ||u||² neither underflow nor
 * overflow): outside it, float32-arithmetic backends get another trust ratio (a known limit,
 * docs/reliability.md), so there only the invariants are checked.
 */
function normsInFloat32Range(x: Input, param: Float32Array): boolean {
  // The parameters of this step, not only their initial scale: a tensor of one tiny element
  // (||p||² ≈ 1e-44, denormal) loses its trust ratio on a GPU that flushes denormals.
  let pp = 0;
  for (const v of param) pp += v * v;
  const pInRange = pp === 0 || (pp > 2 ** -100 && pp < 2 ** 100);
  return pInRange && (x.paramScale === 1 || x.paramScale === 1e-3) && x.pool.every((v) => !Number.isFinite(v) || Math.abs(v) <= 1e15);
}

/** Runs `steps` steps of the reference and every backend (re-synced to the reference each step). */
async function agree(label: string, cls: AnyClass, options: Record<string, unknown>, x: Input, steps: number, makeOthers: (o: Record<string, unknown>) => Backend[]): Promise<void> {
  const opts = { ...options, blockSize: x.blockSize, min8bitSize: 0 };
  const ref = cpuBackend('reference', cls, opts, x.n, bitopt.createReferenceKernel(), true);
  const others = makeOthers(opts);
  try {
    let param = params0(x);
    let dict: StateDict | null = null;
    for (let t = 1; t <= steps; t++) {
      const g = gradient(x, t);
      const want = await ref.step(param, dict, g);
      const where = `${label} n=${x.n} bs=${x.blockSize} step ${t}`;
      checkNonFinite(`${where} reference`, g, param, want.param, want.dict);
      for (const b of others) {
        const got = await b.step(param, dict, g);
        const l = `${where} ${b.name}`;
        checkNonFinite(l, g, param, got.param, got.dict);
        const trust = label.startsWith('lamb') || label.startsWith('lars');
        if (b.float32 && trust && !normsInFloat32Range(x, param)) continue;
        if (b.exact) {
          assert.deepEqual(got.param, want.param, `${l}: params bit for bit`);
          assert.deepEqual(got.dict.tensors, want.dict.tensors, `${l}: states bit for bit`);
        } else {
          compareParams(l, got.param, want.param, param, (i) => (b.ftz || b.float32) && touchedByDenormals(i, g, dict));
          compareStates(l, got.dict, want.dict);
        }
      }
      param = want.param;
      dict = want.dict;
    }
  } finally {
    others.forEach((b) => b.close());
  }
}

/** RELIABILITY_RUNS=k multiplies the number of fuzzed inputs (CI: 1). */
const RUNS = Math.max(1, Number(process.env.RELIABILITY_RUNS ?? 1));

const wasmOk = wasmKernelsSupported();
describe('reliability: reference, wasm exact and wasm float32 agree on fuzzed edge inputs', { skip: !wasmOk && 'WebAssembly SIMD/threads unavailable' }, () => {
  const exact = createWasmKernel({ threads: 1, precision: 'exact' });
  const fast = createWasmKernel({ threads: 2, minParallelSize: 1024, precision: 'float32' });
  const sizes = (bs: number) => [0, 1, bs - 1, bs, bs + 1, 2 * bs + 1, 97, 331, 1009, 20011];
  for (const [rule, c8, c32, options] of RULE_CLASSES) {
    for (const [bits, cls] of [[8, c8], [32, c32]] as const) {
      it(`${rule} ${bits}-bit`, async (t) => {
        let runs = 0;
        await fc.assert(
          fc.asyncProperty(input(sizes, [64, 256]), async (x) => {
            runs++;
            await agree(`${rule}${bits}`, cls, options, x, 3, (o) => [
              // LAMB/LARS sum their norms per block in wasm: the trust ratio may differ in the last bit.
              cpuBackend('wasm-exact', cls, o, x.n, exact, rule !== 'lamb' && rule !== 'lars'),
              cpuBackend('wasm-float32', cls, o, x.n, fast, false, true),
            ]);
          }),
          { numRuns: 20 * RUNS, includeErrorInReport: true },
        );
        t.diagnostic(`inputs tried: ${runs} (3 steps each, reference vs wasm exact and wasm float32)`);
      });
    }
  }
});

const gpu = await requestNodeDevice().catch(() => null);
const gpuSkip = gpu ? false : 'no WebGPU adapter (install chromium for SwiftShader, see docs/architecture.md §5)';
describe('reliability: WebGPU (SwiftShader) agrees with the reference on fuzzed edge inputs', { skip: gpuSkip }, () => {
  const device = gpu?.device as GPUDevice;
  const gpuBackend = (cls: AnyClass, o: Record<string, unknown>, n: number): Backend => {
    const param = createGpuTensor(device, n);
    const grad = createGpuTensor(device, n);
    const opt = createWebgpuOptimizer(device, cls, [param], o);
    return {
      name: 'webgpu',
      exact: false,
      float32: true,
      ftz: true,
      async step(before, dict, g) {
        if (n > 0) writeGpuTensor(device, param, before);
        if (dict) opt.loadStateDict(dict);
        if (n > 0) writeGpuTensor(device, grad, g);
        await opt.step([grad]);
        await opt.sync();
        return { param: await readGpuTensor(device, param), dict: await opt.stateDictAsync() };
      },
      close() {
        opt.destroy();
        param.buffer.destroy();
        grad.buffer.destroy();
      },
    };
  };
  it('regression: an overflowing g² saturates 8-bit GPU states (finite absmax) and 32-bit checkpoints still load', async () => {
    for (const [rule, c8, c32, options] of RULE_CLASSES.filter(([r]) => ['adam', 'lamb', 'ademamix', 'rmsprop'].includes(r))) {
      for (const cls of [c8, c32]) {
        const x: Input = { blockSize: 64, n: 200, paramScale: 1, pool: [1e25, -0.5, 0.25, 1e-3], seed: 3, zeroBlock: 2 };
        await agree(`${rule}-overflow`, cls, options, x, 2, (o) => [gpuBackend(cls, o, x.n)]);
        // The reference's checkpoint after the overflow (+Infinity in a 32-bit second moment) loads into a fresh optimizer.
        const p = params0(x);
        const opt: Optimizer<any> = new cls([p], { ...options, blockSize: 64, min8bitSize: 0 });
        await opt.step([gradient(x, 1)]);
        const back = bitopt.deserializeStateDict(bitopt.serializeStateDict(opt.stateDict()));
        const fresh: Optimizer<any> = new cls([params0(x)], { ...options, blockSize: 64, min8bitSize: 0 });
        fresh.loadStateDict(back);
        assert.deepEqual(fresh.stateDict(), opt.stateDict());
      }
    }
  });
  // SwiftShader is slow: small sizes, few runs, two steps.
  const sizes = (bs: number) => [0, 1, bs - 1, bs, bs + 1, 331, 1031];
  for (const [rule, c8, c32, options] of RULE_CLASSES) {
    for (const [bits, cls] of [[8, c8], [32, c32]] as const) {
      it(`${rule} ${bits}-bit`, async (t) => {
        let runs = 0;
        await fc.assert(
          fc.asyncProperty(input(sizes, [64, 256]), async (x) => {
            runs++;
            await agree(`${rule}${bits}`, cls, options, x, 2, (o) => [gpuBackend(cls, o, x.n)]);
          }),
          { numRuns: 3 * RUNS, includeErrorInReport: true },
        );
        t.diagnostic(`inputs tried: ${runs} (2 steps each, reference vs WebGPU)`);
      });
    }
  }
});
