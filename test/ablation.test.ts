/**
 * The paper's ablation (Dettmers et al. 2022, §2 and Table 3): block-wise dynamic quantization
 * has lower error than tensor-wise dynamic and than block-wise linear quantization, on N(0, 1)
 * samples and on real Adam states captured from a training run. Prints the table.
 * The metric is the mean relative error |x - q(x)| / |x| (over x != 0): what matters for Adam,
 * which divides by sqrt(v). Mean absolute error is printed too: on N(0, 1), linear
 * quantization has the lower absolute error (its codes are spread evenly), as in the paper.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, createDynamicMap, createLinearMap, dequantizeBlockwise, nearestCode, quantizeBlockwise } from '../src/index.js';
import { normal, rng } from './helpers/float64-rules.js';

interface Errors {
  relative: number;
  absolute: number;
}

/** Errors of block-wise quantization with `map`. */
function blockwiseError(x: Float32Array, map: Float32Array, blockSize: number): Errors {
  const { codes, absmax } = quantizeBlockwise(x, { map, blockSize });
  return errors(x, dequantizeBlockwise(codes, absmax, { map, blockSize }));
}

/** Tensor-wise: one absmax for the whole tensor (block sizes stop at 4096, so done by hand). */
function tensorwiseError(x: Float32Array, map: Float32Array): Errors {
  const absmax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  return errors(x, x.map((v) => (absmax === 0 ? 0 : map[nearestCode(map, v / absmax)] * absmax)));
}

function errors(x: Float32Array, y: Float32Array): Errors {
  let abs = 0;
  let rel = 0;
  let nonzero = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    abs += d;
    if (x[i] !== 0) {
      rel += d / Math.abs(x[i]);
      nonzero++;
    }
  }
  return { absolute: abs / x.length, relative: rel / nonzero };
}

/** Adam states (m, v) after training a least-squares model on heavy-tailed features. */
async function captureAdamStates(): Promise<{ m: Float32Array; v: Float32Array }> {
  const rand = rng(42);
  const features = 64;
  const outputs = 1024; // weight matrix of 65,536 parameters
  const w = new Float32Array(features * outputs);
  const target = Float32Array.from(w, () => normal(rand));
  const opt = new Adam([w], { lr: 1e-2 });
  for (let step = 0; step < 60; step++) {
    // One sample x with heavy-tailed features: grad of 0.5·||(W - T) x||² is ((W - T) x) xᵀ.
    const x = Float32Array.from({ length: features }, () => normal(rand) / Math.max(0.05, Math.abs(normal(rand))));
    const g = new Float32Array(w.length);
    for (let o = 0; o < outputs; o++) {
      let r = 0;
      for (let f = 0; f < features; f++) r += (w[o * features + f] - target[o * features + f]) * x[f];
      for (let f = 0; f < features; f++) g[o * features + f] = r * x[f];
    }
    await opt.step([g]);
  }
  const [m, v] = opt.stateDict().tensors[0].states;
  if (m.format !== 'float32' || v.format !== 'float32') throw new Error('expected float32 states');
  return { m: m.values, v: v.values };
}

describe('ablation: block-wise dynamic quantization has the lowest error', () => {
  it('on N(0, 1) and on real Adam states', async () => {
    const rand = rng(1);
    const gauss = Float32Array.from({ length: 1 << 20 }, () => normal(rand));
    const { m, v } = await captureAdamStates();
    const signedDyn = createDynamicMap(true);
    const unsignedDyn = createDynamicMap(false);
    const rows: { input: string; blockDyn: Errors; tensorDyn: Errors; blockLin: Errors }[] = [];
    const measure = (input: string, x: Float32Array, dyn: Float32Array, lin: Float32Array) => {
      const row = { input, blockDyn: blockwiseError(x, dyn, 2048), tensorDyn: tensorwiseError(x, dyn), blockLin: blockwiseError(x, lin, 2048) };
      rows.push(row);
      return row;
    };
    const checks = [
      measure('N(0,1), 1M values', gauss, signedDyn, createLinearMap(true)),
      measure('Adam m (65,536 values)', m, signedDyn, createLinearMap(true)),
      measure('Adam v (65,536 values)', v, unsignedDyn, createLinearMap(false)),
    ];
    const cell = (e: Errors) => `${e.relative.toFixed(4)} (${e.absolute.toExponential(2)})`;
    console.log('\nmean relative quantization error (mean absolute error), block size 2048:');
    console.log('| input | block-wise dynamic | tensor-wise dynamic | block-wise linear |');
    console.log('|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.input} | ${cell(r.blockDyn)} | ${cell(r.tensorDyn)} | ${cell(r.blockLin)} |`);
    for (const r of checks) {
      assert.ok(r.blockDyn.relative < r.tensorDyn.relative, `${r.input}: block-wise ${r.blockDyn.relative} should beat tensor-wise ${r.tensorDyn.relative}`);
      assert.ok(r.blockDyn.absolute < r.tensorDyn.absolute, `${r.input}: block-wise absolute error should beat tensor-wise`);
      assert.ok(r.blockDyn.relative < r.blockLin.relative, `${r.input}: dynamic ${r.blockDyn.relative} should beat linear ${r.blockLin.relative}`);
    }
  });
});
