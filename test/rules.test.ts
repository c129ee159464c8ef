import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as bitopt from '../src/index.js';
import type { Optimizer } from '../src/index.js';
import { refStep, rng, randn, REF_STATES, storeF32, type RefHyper } from './helpers/float64-rules.js';
import { initUnfused, unfusedStep } from './helpers/unfused8bit.js';

// These tests compare bit for bit (or to 1e-5 over many steps) with float64 references: they
// mean the WebAssembly kernel's exact precision, not whatever the default is.
bitopt.setDefaultCpuKernelFactory(() => (bitopt.wasmKernelsSupported() ? bitopt.createWasmKernel({ precision: 'exact' }) : bitopt.createReferenceKernel()));

type Ctor = new (params: Float32Array[], options?: Record<string, unknown>) => Optimizer;

/** Each rule with hyperparameters that exercise every term (weight decay, trust ratio, ...). */
const CASES: { rule: string; eight: string; twin: string; h: RefHyper }[] = [
  { rule: 'adam', eight: 'AdamW8bit', twin: 'AdamW', h: { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 } },
  { rule: 'sgd', eight: 'SGD8bit', twin: 'SGD', h: { lr: 1e-2, momentum: 0.9, weightDecay: 1e-3 } },
  { rule: 'rmsprop', eight: 'RMSprop8bit', twin: 'RMSprop', h: { lr: 1e-3, alpha: 0.99, eps: 1e-8, weightDecay: 1e-3 } },
  { rule: 'adagrad', eight: 'Adagrad8bit', twin: 'Adagrad', h: { lr: 1e-2, eps: 1e-10, weightDecay: 0 } },
  { rule: 'lion', eight: 'Lion8bit', twin: 'Lion', h: { lr: 1e-3, betas: [0.9, 0.99], weightDecay: 1e-2 } },
  { rule: 'ademamix', eight: 'AdEMAMix8bit', twin: 'AdEMAMix', h: { lr: 1e-3, betas: [0.9, 0.999, 0.9999], alpha: 5, eps: 1e-8, weightDecay: 1e-2 } },
  { rule: 'lamb', eight: 'LAMB8bit', twin: 'LAMB', h: { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, maxUnorm: 0.5 } },
  { rule: 'lars', eight: 'LARS8bit', twin: 'LARS', h: { lr: 1e-2, momentum: 0.9, weightDecay: 1e-3, maxUnorm: 0.02 } },
  { rule: 'radam', eight: 'RAdam8bit', twin: 'RAdam', h: { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-3 } },
];

const ctor = (name: string) => (bitopt as unknown as Record<string, Ctor>)[name];

/** Gradient for step t: noisy pull toward 0, with non-finite elements on some steps. */
function gradient(p: Float32Array, t: number, rand: () => number): Float32Array {
  const g = randn(p.length, rand, 0.1);
  for (let i = 0; i < p.length; i++) g[i] += p[i];
  if (t % 7 === 3) {
    g[5] = NaN;
    g[300] = Infinity;
    g[p.length - 1] = -Infinity;
  }
  return g;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor: number): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (Math.abs(b[i]) + floor));
  return worst;
}

describe('32-bit rules vs an independent float64 re-implementation', () => {
  for (const { rule, twin, h } of CASES) {
    it(`${twin}: 60 steps`, async () => {
      const rand = rng(11);
      const n = 1000;
      const p = randn(n, rand);
      const p64 = Float64Array.from(p);
      const s64 = REF_STATES[rule].map(() => new Float64Array(n));
      const opt = new (ctor(twin))([p], { ...h });
      for (let t = 1; t <= 60; t++) {
        const g = gradient(p, t, rand);
        const before = p.slice();
        await opt.step([g]);
        refStep(rule, h, t, p64, Float64Array.from(g), s64, storeF32);
        if (t % 7 === 3) for (const i of [5, 300, n - 1]) assert.equal(p[i], before[i], 'non-finite gradient leaves the parameter alone');
      }
      const d = maxRelDiff(p, p64, 1e-3);
      assert.ok(d < 1e-5, `${twin}: max relative difference ${d}`);
      const state = opt.stateDict().tensors[0].states;
      assert.equal(state.length, REF_STATES[rule].length);
      state.forEach((st, k) => {
        assert.equal(st.format, 'float32');
        if (st.format === 'float32') assert.ok(maxRelDiff(st.values, s64[k], 1e-6) < 1e-4, `state ${k}`);
      });
    });
  }
});

describe('8-bit rules vs a plain unfused reference', () => {
  for (const { rule, eight, h } of CASES) {
    it(`${eight}: 25 steps, partial last block, non-finite gradients`, async () => {
      const rand = rng(23);
      const n = 4096 + 1000; // 20 blocks of 256, the last one partial
      const blockSize = 256;
      const p = randn(n, rand);
      const pRef = p.slice();
      const ref = initUnfused(rule, n, blockSize);
      const opt = new (ctor(eight))([p], { ...h, blockSize });
      let codeMismatches = 0;
      let codes = 0;
      for (let t = 1; t <= 25; t++) {
        const g = gradient(p, t, rand);
        await opt.step([g]);
        unfusedStep(rule, h, ref, pRef, g, blockSize);
        const states = opt.stateDict().tensors[0].states;
        states.forEach((st, k) => {
          assert.equal(st.format, 'blockwise8');
          if (st.format !== 'blockwise8') return;
          for (let i = 0; i < n; i++) {
            const d = Math.abs(st.codes[i] - ref.codes[k][i]);
            assert.ok(d <= 1, `${eight} step ${t} state ${k} code ${i}: ${st.codes[i]} vs ${ref.codes[k][i]}`);
            codeMismatches += d;
            codes++;
          }
          assert.ok(maxRelDiff(st.absmax, ref.absmax[k], 1e-12) < 1e-4, `absmax of state ${k} at step ${t}`);
        });
        if (t % 7 === 3) {
          for (const i of [5, 300, n - 1]) for (const st of states) if (st.format === 'blockwise8') assert.equal(st.map[st.codes[i]], 0, 'state reset');
        }
      }
      assert.ok(codeMismatches / codes < 1e-3, `${eight}: ${codeMismatches} of ${codes} codes off by one`);
      const d = maxRelDiff(p, pRef, 1e-2);
      assert.ok(d < 1e-4, `${eight}: parameters differ by ${d}`);
    });
  }
});

describe('8-bit trajectories stay close to 32-bit', () => {
  for (const { rule, eight, twin, h } of CASES) {
    it(`${eight} vs ${twin} on a noisy quadratic`, async () => {
      const n = 8192;
      const rand = rng(5);
      const curvature = Float32Array.from({ length: n }, () => 0.1 + rand());
      const start = randn(n, rand);
      const loss = (p: Float32Array) => p.reduce((s, x, i) => s + 0.5 * curvature[i] * x * x, 0) / n;
      const run = async (name: string) => {
        const p = start.slice();
        const opt = new (ctor(name))([p], { ...h });
        const noise = rng(99);
        for (let t = 1; t <= 150; t++) {
          const g = new Float32Array(n);
          for (let i = 0; i < n; i++) g[i] = curvature[i] * p[i] + 0.05 * (noise() - 0.5);
          await opt.step([g]);
        }
        return p;
      };
      const p8 = await run(eight);
      const p32 = await run(twin);
      const l0 = loss(start);
      const l8 = loss(p8);
      const l32 = loss(p32);
      assert.ok(l32 < l0, `${twin} makes progress (${l0} → ${l32})`);
      // The 8-bit run must make the same progress: final losses within 2% of the initial loss.
      assert.ok(Math.abs(l8 - l32) < 0.02 * l0, `${eight}: loss ${l8} vs ${l32} (start ${l0})`);
      let dist = 0;
      let travel = 0;
      for (let i = 0; i < n; i++) {
        dist += (p8[i] - p32[i]) ** 2;
        travel += (p32[i] - start[i]) ** 2;
      }
      assert.ok(Math.sqrt(dist) < 0.1 * Math.sqrt(travel), `${eight}: distance to 32-bit ${Math.sqrt(dist)}, travel ${Math.sqrt(travel)}`);
    });
  }
});
