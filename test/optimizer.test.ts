import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, Adam8bit, AdamW8bit, createReferenceKernel, dequantizeBlockwise, LAMB8bit, Lion8bit, SGD8bit, type CpuKernel, type StateDict } from '../src/index.js';
import { createWasmKernel, wasmKernelsSupported } from '../src/kernels/cpu/index.js';
import { rng, randn } from './helpers/float64-rules.js';

const grads = (ps: Float32Array[], rand: () => number) => ps.map((p) => randn(p.length, rand, 0.1));

describe('optimizer framework', () => {
  it('8-bit Adam keeps ~2 bytes of state per parameter; small tensors keep float32', async () => {
    const big = new Float32Array(1 << 16);
    const small = new Float32Array(100);
    const opt = new Adam8bit([big, small]);
    assert.equal(opt.stateBytes(), 0, 'no state before the first step');
    await opt.step([new Float32Array(big.length).fill(0.1), new Float32Array(100).fill(0.1)]);
    const expected = 2 * big.length + 2 * 4 * (big.length / 256) + 2 * 4 * small.length;
    assert.equal(opt.stateBytes(), expected);
    const formats = opt.stateDict().tensors.map((t) => t.states.map((s) => s.format));
    assert.deepEqual(formats, [['blockwise8', 'blockwise8'], ['float32', 'float32']]);
    assert.ok(2 * big.length + 8 * (big.length / 256) <= 2.04 * big.length);
  });

  it('parameter groups take their own options', async () => {
    const a = new Float32Array(10).fill(1);
    const b = new Float32Array(10).fill(1);
    const opt = new SGD8bit([{ params: [a], lr: 0.1 }, { params: [b] }], { lr: 0.01, momentum: 0.5 });
    await opt.step([new Float32Array(10).fill(1), new Float32Array(10).fill(1)]);
    assert.equal(a[0], Math.fround(1 - 0.1));
    assert.equal(b[0], Math.fround(1 - 0.01));
    opt.setOptions({ lr: 0.5 }, 1);
    assert.equal(opt.groupOptions(1).lr, 0.5);
    assert.equal(opt.groupOptions(0).lr, 0.1);
  });

  it('overrideConfig forces 32-bit state for one tensor and is fixed after its first step', async () => {
    const emb = new Float32Array(8192);
    const w = new Float32Array(8192);
    const opt = new Adam8bit([emb, w]);
    opt.overrideConfig(emb, { optimBits: 32 });
    await opt.step([new Float32Array(8192).fill(1), new Float32Array(8192).fill(1)]);
    const formats = opt.stateDict().tensors.map((t) => t.states[0].format);
    assert.deepEqual(formats, ['float32', 'blockwise8']);
    assert.throws(() => opt.overrideConfig(emb, { optimBits: 8 }), /optimBits cannot change once a parameter has state/);
    opt.overrideConfig(emb, { lr: 1e-4 }); // hyperparameters may change any time
    assert.throws(() => opt.overrideConfig(new Float32Array(3), { lr: 1 }), /not a parameter of this optimizer/);
  });

  it('percentile clipping scales a spike down to the chosen percentile of the norm history', async () => {
    const p = new Float32Array(64);
    const opt = new SGD8bit([p], { lr: 1, momentum: 0, percentileClipping: 50 });
    // Norms 1..10, then a spike of 100: the history holds 11 norms, the 50th percentile is the
    // 6th smallest (index floor(0.5·11) = 5), i.e. 6, so the spike is scaled by 6/100.
    for (let k = 1; k <= 10; k++) {
      const g = new Float32Array(64);
      g[0] = k;
      p.fill(0);
      await opt.step([g]);
    }
    p.fill(0);
    const spike = new Float32Array(64);
    spike[0] = 100;
    await opt.step([spike]);
    assert.ok(Math.abs(p[0] - -6) < 1e-5, `clipped update ${p[0]}`);
  });

  it('LAMB clamps the update norm to maxUnorm·||p||', async () => {
    const n = 5000;
    const p = new Float32Array(n).fill(1);
    const opt = new LAMB8bit([p], { lr: 1, maxUnorm: 0.01 });
    // Step 1 of Adam moves every element by ~lr (|m/sqrt(v)| = 1): ||u|| = sqrt(n) = ||p||,
    // so the clamp scales the update to 0.01·||p||: each element moves by ~0.01.
    await opt.step([new Float32Array(n).fill(0.5)]);
    assert.ok(Math.abs(p[0] - 0.99) < 1e-4, `p = ${p[0]}`);
  });

  it('state dict round-trips bit-exactly and training continues identically', async () => {
    const rand = rng(3);
    const ps = [randn(5000, rand), randn(300, rand)];
    const clone = ps.map((p) => p.slice());
    const a = new AdamW8bit(ps, { percentileClipping: 90 });
    for (let t = 0; t < 5; t++) await a.step(grads(ps, rand));
    const dict = structuredClone(a.stateDict());
    const b = new AdamW8bit(clone, { percentileClipping: 90 });
    b.loadStateDict(dict);
    clone.forEach((c, i) => c.set(ps[i]));
    assert.deepEqual(b.stateDict(), a.stateDict());
    for (let t = 0; t < 5; t++) {
      const g = grads(ps, rand);
      await a.step(g);
      await b.step(g.map((x) => x.slice()));
    }
    ps.forEach((p, i) => assert.deepEqual(clone[i], p));
    assert.deepEqual(b.stateDict(), a.stateDict());
  });

  it('rejects bad options, naming them', () => {
    const p = [new Float32Array(4)];
    assert.throws(() => new Adam8bit(p, { lr: -1 }), /lr must be a finite number in \[0, 10000\]/);
    assert.throws(() => new Adam8bit(p, { betas: [0.9, 1] }), /betas\[1\] must be in \[0, 1\)/);
    assert.throws(() => new Adam8bit(p, { betas: [0.9] as unknown as [number, number] }), /betas must be an array of 2/);
    assert.throws(() => new Adam8bit(p, { lrr: 1 } as never), /unknown option 'lrr'/);
    assert.throws(() => new Adam8bit(p, { blockSize: 100 }), /blockSize must be a power of two/);
    assert.throws(() => new Adam8bit(p, { optimBits: 16 as 8 }), /optimBits must be 4, 8 or 32/);
    assert.throws(() => new Lion8bit(p, { eps: 1 } as never), /unknown option 'eps'/);
    assert.throws(() => new Adam8bit([new Float64Array(4) as unknown as Float32Array]), /must be a Float32Array/);
    assert.throws(() => new Adam8bit([p[0], p[0]]), /appears more than once/);
    assert.throws(() => new Adam8bit([]), /non-empty/);
  });

  it('a step with a bad gradient throws before changing anything', async () => {
    const a = new Float32Array(10).fill(1);
    const b = new Float32Array(10).fill(1);
    const opt = new Adam8bit([a, b]);
    await assert.rejects(opt.step([new Float32Array(10).fill(1), new Float32Array(9)]), /gradient 1 has 9 elements but its parameter has 10/);
    await assert.rejects(opt.step([new Float32Array(10)]), /got 1 gradients for 2 parameters/);
    await assert.rejects(opt.step([new Float32Array(10), new Float64Array(10) as unknown as Float32Array]), /gradient 1 must be a Float32Array, got Float64Array/);
    assert.ok(a.every((x) => x === 1), 'first parameter untouched');
    assert.equal(opt.stepCount(0), 0);
    assert.equal(opt.stateBytes(), 0);
  });

  it('loadStateDict rejects foreign, mismatched and corrupted checkpoints without changing state', async () => {
    const p = new Float32Array(5000).fill(1);
    const opt = new Adam8bit([p]);
    await opt.step([new Float32Array(5000).fill(0.1)]);
    const good = opt.stateDict();
    const before = structuredClone(good);
    const mutate = (f: (d: StateDict) => void) => {
      const d = structuredClone(good);
      f(d);
      return d;
    };
    const cases: [StateDict, RegExp][] = [
      [mutate((d) => (d.format = 'x' as never)), /not a bitopt optimizer state/],
      [mutate((d) => (d.version = 3 as never)), /unsupported state dict version 3/],
      [mutate((d) => (d.optimizer = 'Lion8bit')), /state dict is from Lion8bit/],
      [mutate((d) => (d.tensors[0].length = 4999)), /state is for 4999 elements but the parameter has 5000/],
      [mutate((d) => d.tensors.push(d.tensors[0])), /2 tensors, this optimizer has 1 parameters/],
      [mutate((d) => ((d.tensors[0].states[0] as { absmax: Float32Array }).absmax[3] = NaN)), /absmax: value 3 is NaN/],
      [mutate((d) => ((d.tensors[0].states[1] as { codes: Uint8Array }).codes = new Uint8Array(10))), /codes: expected 5000 values, got 10/],
      [mutate((d) => ((d.tensors[0].states[0] as { map: Float32Array }).map[0] = 5)), /outside \[-1, 1\]/],
      [mutate((d) => (d.tensors[0].states[0].sign = 'unsigned')), /sign must be 'signed'/],
      [mutate((d) => d.tensors[0].states.pop()), /expected 2 states/],
      [mutate((d) => (d.tensors[0].step = -1)), /step must be a non-negative integer/],
      [mutate((d) => (d.groups[0].options.lr = -5)), /lr must be a finite number in \[0, 10000\]/],
    ];
    for (const [dict, message] of cases) assert.throws(() => opt.loadStateDict(dict), message);
    assert.deepEqual(opt.stateDict(), before, 'nothing changed');
    const other = new Adam([new Float32Array(5000)]);
    assert.throws(() => other.loadStateDict(good), /state dict is from Adam8bit \(rule 'adam'\), this optimizer is Adam/);
  });
});

describe('parameters joining later, steps over some parameters', () => {
  it('a null gradient skips its parameter: values, state and step count stay; the others step as alone', async () => {
    const rand = rng(5);
    const [a, b] = [randn(5000, rand), randn(300, rand)];
    const [a1, b1] = [a.slice(), b.slice()];
    const both = new Adam8bit([a, b], { lr: 1e-2 });
    const onlyA = new Adam8bit([a1], { lr: 1e-2 });
    const onlyB = new Adam8bit([b1], { lr: 1e-2 });
    for (const o of [both, onlyA, onlyB]) o.setKernel(createReferenceKernel());
    const gA = [randn(5000, rand), randn(5000, rand)];
    const gB = randn(300, rand);
    await both.step([gA[0], null]);
    both.stepSync([gA[1], undefined]);
    await onlyA.step([gA[0]]);
    await onlyA.step([gA[1]]);
    assert.deepEqual(a, a1);
    assert.deepEqual([both.stepCount(0), both.stepCount(1)], [2, 0]);
    assert.deepEqual(both.stateDict().tensors[1].states, [], 'no state for a parameter never stepped');
    await both.step([null, gB]);
    await onlyB.step([gB]);
    assert.deepEqual(b, b1);
    assert.deepEqual(both.stateDict().tensors[1], onlyB.stateDict().tensors[0]);
    await assert.rejects(both.step([null, new Float32Array(3)]), /gradient 1 has 3 elements/);
  });

  it('addParam: a parameter joins a group (or an optimizer with no parameter yet) and gets state at its first step', async () => {
    const opt = new SGD8bit([{ params: [], lr: 0.5 }, { params: [] }], { lr: 0.1, momentum: 0 });
    opt.setKernel(createReferenceKernel());
    assert.deepEqual(opt.params, []);
    await opt.step([]);
    const p = new Float32Array(8).fill(1);
    const q = new Float32Array(8).fill(1);
    assert.equal(opt.addParam(p), 0);
    assert.equal(opt.addParam(q, { group: 1, override: { lr: 0.25 } }), 1);
    assert.deepEqual(opt.params, [p, q]);
    assert.equal(opt.stateBytes(), 0, 'state is created at the first step');
    await opt.step([new Float32Array(8).fill(1), new Float32Array(8).fill(1)]);
    assert.equal(p[0], Math.fround(1 - 0.5), 'group 0 lr');
    assert.equal(q[0], Math.fround(1 - 0.25), 'override over group 1');
    assert.deepEqual(opt.stateDict().groups.map((g) => g.params), [[0], [1]]);
    assert.throws(() => opt.addParam(p), /already a parameter/);
    assert.throws(() => opt.addParam(new Float64Array(2) as never), /must be a Float32Array, got Float64Array/);
    assert.throws(() => opt.addParam(new Float32Array(2), { group: 2 }), /no parameter group 2/);
    assert.throws(() => opt.addParam(new Float32Array(2), { override: { momentum: 2 } }), /momentum must be in \[0, 1\)/);
    assert.equal(opt.params.length, 2, 'a rejected parameter was not added');
  });

  it('addParam with a checkpointed tensor state continues exactly like the optimizer that wrote it', async () => {
    const rand = rng(9);
    const w = randn(6000, rand);
    const ref = new Adam8bit([w], { percentileClipping: 90 });
    ref.setKernel(createReferenceKernel());
    for (let t = 0; t < 3; t++) await ref.step([randn(6000, rand)]);
    const copy = w.slice();
    const joined = new Adam8bit([new Float32Array(10)], { percentileClipping: 90 });
    joined.setKernel(createReferenceKernel());
    const saved = structuredClone(ref.stateDict().tensors[0]);
    assert.throws(() => joined.addParam(new Float32Array(5999), { state: saved }), /tensor 1: state is for 6000 elements but the parameter has 5999/);
    assert.equal(joined.addParam(copy, { state: saved }), 1);
    assert.equal(joined.stepCount(1), 3);
    for (let t = 0; t < 3; t++) {
      const g = randn(6000, rand);
      await ref.step([g]);
      await joined.step([null, g]);
    }
    assert.deepEqual(copy, w);
    assert.deepEqual(joined.stateDict().tensors[1], ref.stateDict().tensors[0]);
  });

  it('replaceParam swaps the array of one parameter and keeps its override', async () => {
    const a = new Float32Array(16).fill(1);
    const b = new Float32Array(16).fill(1);
    const opt = new SGD8bit([a, b], { lr: 0.1, momentum: 0 });
    opt.overrideConfig(a, { lr: 0.5 });
    const a2 = new Float32Array(16).fill(2);
    opt.replaceParam(0, a2);
    assert.throws(() => opt.overrideConfig(a, { lr: 1 }), /not a parameter/);
    assert.throws(() => opt.replaceParam(1, a2), /already another parameter/);
    await opt.step([new Float32Array(16).fill(1), new Float32Array(16).fill(1)]);
    assert.equal(a2[0], Math.fround(2 - 0.5));
    assert.equal(a[0], 1);
    assert.deepEqual(opt.stateDict().overrides, [{ param: 0, options: { lr: 0.5 } }]);
  });
});

/** Dequantized 8-bit state k of tensor 0 of `dict`. */
function decoded(dict: StateDict, k: number): Float32Array {
  const e = dict.tensors[0].states[k];
  if (e.format !== 'blockwise8') throw new Error('expected an 8-bit state');
  return dequantizeBlockwise(e.codes, e.absmax, { map: e.map, blockSize: e.blockSize });
}

describe('8-bit second moments of rarely-lit elements', () => {
  const kernels: [string, () => CpuKernel][] = [['reference kernel', createReferenceKernel]];
  if (wasmKernelsSupported()) {
    kernels.push(['wasm kernel', () => createWasmKernel()], ['wasm kernel, float32', () => createWasmKernel({ precision: 'float32' })]);
  }
  for (const [name, kernel] of kernels) {
    it(`${name}: an element lit once at 1e-5 of the block keeps v > 0 and a bounded update`, async () => {
      // One block: element 0 gets a gradient of -1e-5 once (v/absmax = 1e-10, below the unsigned
      // map's first midpoint 1.6e-7), then 0, while the others get ±1 every step. Its m stays
      // nonzero (the sign nudge keeps a negative m at the smallest negative code), so a v that
      // decoded to 0 would give an update of lr·m̂/eps, about 470·lr at step 2.
      const n = 256;
      const lr = 1e-3;
      const p = new Float32Array(n).fill(0.5);
      const opt = new Adam8bit([p], { lr, blockSize: 256, min8bitSize: 0 });
      opt.setKernel(kernel());
      const rand = rng(11);
      for (let t = 1; t <= 60; t++) {
        const g = Float32Array.from({ length: n }, () => (rand() < 0.5 ? -1 : 1));
        g[0] = t === 1 ? -1e-5 : 0;
        const before = p[0];
        await opt.step([g]);
        assert.ok(Math.abs(p[0] - before) <= 10 * lr, `step ${t}: |Δp| = ${Math.abs(p[0] - before)} > 10·lr`);
        const dict = opt.stateDict();
        const m = decoded(dict, 0)[0];
        const v = decoded(dict, 1)[0];
        if (m !== 0) assert.ok(v > 0, `step ${t}: m = ${m} but v decodes to ${v}`);
        if (t === 1) assert.ok(m < 0 && v > 0, `step 1: m = ${m}, v = ${v}`);
      }
    });
  }
});
