/**
 * The ablation's building blocks: VariantAdam reproduces Adam8bit bit for bit with the
 * library's settings, the quantization variants behave as their definitions say, and the
 * "bigger model in the same memory" accounting matches a hand count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam8bit, createDynamicMap, createLinearMap, createReferenceKernel, createWasmKernel, wasmKernelsSupported } from 'bitopt';
import { BUDGET_BYTES, budgetReport, trainingBytes } from '../src/demo/budget.js';
import { transformerShapes } from '../src/demo/models/transformer.js';
import { dequantizeVariant, quantizationError, quantizeVariant } from '../src/demo/quant-variants.js';
import { Rng } from '../src/demo/rng.js';
import { VariantAdam } from '../src/demo/variant-adam.js';
import { ablationTables, runAblation } from '../src/demo/ablation.js';

function randomArray(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

describe('demo ablation', () => {
  it('VariantAdam with the dynamic map and 256-blocks equals Adam8bit bit for bit', async () => {
    const rng = new Rng(3);
    const shapes = [5000, 300, 4096 + 17];
    const a = shapes.map((n) => randomArray(rng, n, 0.1));
    const b = a.map((p) => p.slice());
    const ref = new Adam8bit(a, { lr: 1e-2 });
    ref.setKernel(wasmKernelsSupported() ? createWasmKernel({ precision: 'exact' }) : createReferenceKernel()); // bit for bit: the exact mode
    const mine = new VariantAdam(b, { name: 'dyn', map: 'dynamic', blockSize: 256 }, { lr: 1e-2 });
    for (let step = 0; step < 6; step++) {
      const grads = shapes.map((n) => randomArray(rng, n, step % 2 ? 1e-3 : 1));
      grads[0][7] = NaN; // non-finite gradients are handled the same way too
      await ref.step(grads);
      mine.step(grads);
    }
    a.forEach((p, i) => assert.deepEqual(b[i], p, `tensor ${i}`));
    assert.equal(mine.stateBytes(), ref.stateBytes());
  });

  it('tensor-wise quantization uses one absmax, max |x|, over a tensor longer than 4096', () => {
    const x = randomArray(new Rng(4), 10000);
    x[9000] = -7.5;
    const map = createDynamicMap(true);
    const q = quantizeVariant(x, map, 0, 'none');
    assert.equal(q.absmax.length, 1);
    assert.equal(q.absmax[0], 7.5);
    const y = dequantizeVariant(q, map);
    assert.equal(y[9000], Math.fround(7.5 * map[q.codes[9000]]));
    assert.ok(y[9000] < -7.4);
  });

  it('values on the grid of map × absmax quantize without error', () => {
    const map = createLinearMap(true);
    const x = Float32Array.from([map[0], map[40], map[128], map[255], map[200]].map((v) => Math.fround(v * 2)));
    const e = quantizationError(x, map, 0, 'none');
    assert.ok(e.relL2 < 1e-7 && e.meanRel < 1e-6, JSON.stringify(e));
  });

  it('block-wise beats tensor-wise with an outlier; dynamic beats linear on heavy-tailed values', () => {
    const rng = new Rng(5);
    const x = randomArray(rng, 8192, 1e-3);
    x[100] = 1; // one outlier ruins a tensor-wise scale for everything else
    const dyn = createDynamicMap(true);
    const lin = createLinearMap(true);
    assert.ok(quantizationError(x, dyn, 256, 'none').meanRel < 0.5 * quantizationError(x, dyn, 0, 'none').meanRel);
    // Second-moment-like values span orders of magnitude: linear codes zero most of them.
    const v = Float32Array.from({ length: 8192 }, () => Math.exp(rng.normal() * 3));
    const un = createDynamicMap(false);
    const ulin = createLinearMap(false);
    const eDyn = quantizationError(v, un, 256, 'none');
    const eLin = quantizationError(v, ulin, 256, 'none');
    assert.ok(eDyn.meanRel < eLin.meanRel / 3, `${eDyn.meanRel} vs ${eLin.meanRel}`);
    assert.ok(eLin.zeroed > 0.3 && eDyn.zeroed < 0.05, `${eLin.zeroed} / ${eDyn.zeroed}`);
    void lin;
  });

  it('training bytes: weights 4 + grads 4 + state 8 (32-bit) or 2 + absmax (8-bit), small tensors float32', () => {
    const t = [{ shape: [512, 256] }, { shape: [100] }, { shape: [64, 64], fullPrecision: true }];
    const n = 512 * 256 + 100 + 4096;
    assert.deepEqual(trainingBytes(t, 32), { params: n, weights: 4 * n, grads: 4 * n, state: 8 * n, total: 16 * n });
    const state8 = 2 * (131072 + 4 * 512) + 8 * 100 + 8 * 4096;
    assert.equal(trainingBytes(t, 8).state, state8);
  });

  it('the transformer family counts 12·d²·L weights plus embeddings, norms and biases', () => {
    const c = { vocab: 48, context: 64, dModel: 128, heads: 4, layers: 3 };
    const n = trainingBytes(transformerShapes(c), 32).params;
    const d = 128;
    assert.equal(n, 12 * d * d * 3 + 48 * d + 2 * d + 64 * d + 3 * (4 * d + 4 * d + d) + 2 * d);
  });

  it('8-bit Adam fits a larger model in the 4 GiB budget', () => {
    const r = budgetReport();
    assert.equal(r.budgetBytes, BUDGET_BYTES);
    assert.equal(r.maxParams.bits32, 2 ** 32 / 16);
    assert.equal(r.maxParams.bits8, Math.floor(2 ** 32 / (10 + 8 / 256)));
    for (const f of [r.transformer.bits32, r.transformer.bits8]) assert.ok(f.bytes.total <= BUDGET_BYTES);
    // The next size up does not fit (the search found the largest).
    const next = (f: typeof r.transformer.bits32) => {
      const L = f.config.layers + 1;
      return trainingBytes(transformerShapes({ ...f.config, layers: L, dModel: 64 * L, heads: L }), f.bits).total;
    };
    assert.ok(next(r.transformer.bits32) > BUDGET_BYTES && next(r.transformer.bits8) > BUDGET_BYTES);
    assert.ok(r.transformer.bits8.params > 1.5 * r.transformer.bits32.params);
  });

  it('runAblation captures real states and trains every chosen variant (short MNIST run)', async () => {
    const variants = ['dynamic, block-wise 256 (bitopt default)', 'linear, tensor-wise'];
    const a = await runAblation({ task: 'mnist', seeds: [1], steps: 6, tfBackend: 'wasm', command: 'test', log: () => {}, progress: false, variants });
    // Captures at steps 1, 3, 6 × the MLP's two tensors of ≥ 4096 elements × (m, v) × variants.
    assert.equal(a.quantError.length, 3 * 2 * 2 * variants.length);
    assert.deepEqual([...new Set(a.quantError.map((r) => r.step))], [1, 3, 6]);
    assert.ok(a.quantError.every((r) => r.elements === 784 * 256 || r.elements === 256 * 128));
    assert.deepEqual(a.stability.map((s) => s.variant), ['Adam 32-bit', ...variants.map((v) => `8-bit ${v}`)]);
    assert.ok(a.stability.every((s) => s.finalLoss.length === 1 && s.curve.length > 0));
    assert.match(ablationTables(a), /Quantization error of Adam's v \(unsigned\) states/);
  });
});
