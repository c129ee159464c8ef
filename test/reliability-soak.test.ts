/**
 * Reliability soak: 8-bit Adam (bitopt/tfjs on the tfjs cpu backend) training the demo's MNIST
 * MLP (784 → 128 → 10, real digits from the `mnist` package) with minibatches for many steps.
 * Checked every window of steps: no NaN (loss, parameters, states), no drift of the 8-bit state
 * ranges (block absmax statistics of the later windows stay within a factor of the early
 * ones), no memory growth (tf.memory() tensors and bytes identical after warm-up; the JS heap's
 * array buffers bounded), and the model learns. CI runs SOAK_STEPS (default 400);
 * `SOAK_STEPS=10000 node --import tsx --test test/reliability-soak.test.ts` is the long run
 * recorded in docs/reliability.md. A WebGPU soak (SwiftShader) checks that steps after warm-up
 * create no GPU buffers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// The gradients of tfjs-core's ops: tfjs-layers registers them as a side effect (bitopt/tfjs no longer imports it).
import '@tensorflow/tfjs-layers';
import * as bitopt from '../src/index.js';
import { IMAGE_SIZE, loadMnist, NUM_CLASSES } from '../packages/demo/src/demo/data/mnist.js';
import { createGpuTensor, writeGpuTensor } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { createWebgpuOptimizer } from '../src/kernels/webgpu/optimizer.js';
import { decodeVariableStates, adam8bit } from '../src/tfjs/index.js';
import { randn, rng } from './helpers/float64-rules.js';
import './helpers/swiftshader.js';

const STEPS = Math.max(100, Number(process.env.SOAK_STEPS ?? 400));
const WINDOW = Math.max(50, Math.floor(STEPS / 12));
const BATCH = 64;

interface Sample {
  step: number;
  loss: number;
  tensors: number;
  bytes: number;
  arrayBuffers: number;
  /** Per 8-bit state (variable/state): max and mean block absmax. */
  absmax: Map<string, { max: number; mean: number }>;
}

let data: ReturnType<typeof loadMnist> | null = null;
try {
  data = loadMnist();
} catch {
  data = null;
}

describe('reliability soak', () => {
  it(`Adam8bit on the MNIST MLP (tfjs cpu), ${STEPS} steps: no NaN, no state drift, no memory growth`, { skip: data ? false : 'mnist package missing', timeout: 30 * 60_000 }, async (t) => {
    await tf.setBackend('cpu');
    await tf.ready();
    const { train } = data!;
    const rand = rng(7);
    const init = (rows: number, cols: number, name: string) => tf.variable(tf.tensor2d(randn(rows * cols, rand).map((v) => v * Math.sqrt(2 / rows)), [rows, cols]), true, name);
    const w1 = init(IMAGE_SIZE, 128, 'soak_w1');
    const b1 = tf.variable(tf.zeros([128]), true, 'soak_b1');
    const w2 = init(128, NUM_CLASSES, 'soak_w2');
    const b2 = tf.variable(tf.zeros([NUM_CLASSES]), true, 'soak_b2');
    const opt = adam8bit(1e-3);
    const x = new Float32Array(BATCH * IMAGE_SIZE);
    const y = new Float32Array(BATCH * NUM_CLASSES);
    const samples: Sample[] = [];
    const t0 = performance.now();
    let lossSum = 0;
    for (let step = 1; step <= STEPS; step++) {
      y.fill(0);
      for (let k = 0; k < BATCH; k++) {
        const i = Math.floor(rand() * train.count);
        x.set(train.images.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE), k * IMAGE_SIZE);
        y[k * NUM_CLASSES + train.labels[i]] = 1;
      }
      const loss = tf.tidy(() => {
        const xs = tf.tensor2d(x, [BATCH, IMAGE_SIZE]);
        const ys = tf.tensor2d(y, [BATCH, NUM_CLASSES]);
        return opt.minimize(() => tf.losses.softmaxCrossEntropy(ys, tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(xs, w1), b1)), w2), b2)) as tf.Scalar, true)!;
      });
      lossSum += (await loss.data())[0];
      loss.dispose();
      if (step % WINDOW === 0) {
        const weights = await opt.getWeights();
        const states = await decodeVariableStates(weights.slice(1));
        weights.forEach((w) => w.tensor.dispose());
        const absmax = new Map<string, { max: number; mean: number }>();
        for (const s of states) {
          s.dict.tensors[0].states.forEach((st, k) => {
            if (st.format === 'float32') return assert.ok(st.values.every(Number.isFinite), `${s.name} state ${k} finite`);
            assert.ok(st.absmax.every(Number.isFinite), `${s.name} state ${k} absmax finite`);
            absmax.set(`${s.name}/${k}`, { max: Math.max(...st.absmax), mean: st.absmax.reduce((a, b) => a + b, 0) / st.absmax.length });
          });
        }
        for (const v of [w1, b1, w2, b2]) assert.ok((v.dataSync() as Float32Array).every(Number.isFinite), `step ${step}: ${v.name} finite`);
        const mem = tf.memory();
        samples.push({ step, loss: lossSum / WINDOW, tensors: mem.numTensors, bytes: mem.numBytes, arrayBuffers: process.memoryUsage().arrayBuffers, absmax });
        assert.ok(Number.isFinite(lossSum), `step ${step}: loss is ${lossSum}`);
        lossSum = 0;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    // Memory: after the first window (states created), nothing grows.
    const [first, ...rest] = samples;
    for (const s of rest) {
      assert.equal(s.tensors, first.tensors, `step ${s.step}: tf.memory().numTensors ${s.tensors} vs ${first.tensors}`);
      assert.equal(s.bytes, first.bytes, `step ${s.step}: tf.memory().numBytes ${s.bytes} vs ${first.bytes}`);
    }
    const abGrowth = Math.max(...rest.map((s) => s.arrayBuffers)) - first.arrayBuffers;
    assert.ok(abGrowth < 64 << 20, `JS array buffers grew by ${abGrowth} bytes`);
    // State ranges: the later half's absmax statistics within a factor 4 of the early windows' range.
    const early = samples.slice(0, Math.ceil(samples.length / 2));
    const late = samples.slice(Math.ceil(samples.length / 2));
    const ranges: string[] = [];
    for (const key of first.absmax.keys()) {
      const eMax = Math.max(...early.map((s) => s.absmax.get(key)!.max));
      const eMean = Math.max(...early.map((s) => s.absmax.get(key)!.mean));
      const lMax = Math.max(...late.map((s) => s.absmax.get(key)!.max));
      const lMean = Math.max(...late.map((s) => s.absmax.get(key)!.mean));
      ranges.push(`${key}: max absmax early ${eMax.toExponential(2)} late ${lMax.toExponential(2)}, mean early ${eMean.toExponential(2)} late ${lMean.toExponential(2)}`);
      assert.ok(lMax <= 4 * eMax && lMean <= 4 * eMean, `state ${key} drifted: ${ranges[ranges.length - 1]}`);
    }
    const last = samples[samples.length - 1];
    assert.ok(last.loss < 0.5 * first.loss, `the model learns: loss ${first.loss} -> ${last.loss}`);
    t.diagnostic(`${STEPS} steps (batch ${BATCH}) in ${seconds.toFixed(1)} s; loss per window: ${samples.map((s) => s.loss.toFixed(3)).join(' ')}`);
    t.diagnostic(`tf.memory(): ${first.tensors} tensors / ${first.bytes} bytes at every window; JS array buffers ${(first.arrayBuffers / 2 ** 20).toFixed(1)} MiB, max growth ${(abGrowth / 2 ** 20).toFixed(2)} MiB`);
    for (const r of ranges) t.diagnostic(r);
    opt.dispose();
    for (const v of [w1, b1, w2, b2]) v.dispose();
  });

  it('WebGPU (SwiftShader): 150 steps of Adam8bit create no GPU buffers after warm-up, states stay finite', { timeout: 120_000 }, async (t) => {
    const gpu = await requestNodeDevice().catch(() => null);
    if (!gpu) return t.skip('no WebGPU adapter');
    const { device } = gpu;
    let created = 0;
    const createBuffer = device.createBuffer.bind(device);
    device.createBuffer = (d: GPUBufferDescriptor) => (created++, createBuffer(d));
    const rand = rng(3);
    const n = 20000;
    const param = createGpuTensor(device, randn(n, rand));
    const grad = createGpuTensor(device, n);
    const opt = createWebgpuOptimizer(device, bitopt.Adam8bit, [param], { lr: 1e-3, percentileClipping: 95 });
    const g = randn(n, rand);
    let afterWarmup = 0;
    for (let step = 1; step <= 150; step++) {
      for (let i = 0; i < 64; i++) g[Math.floor(rand() * n)] = randn(1, rand)[0] * (1 + step / 100);
      writeGpuTensor(device, grad, g);
      await opt.step([grad]);
      if (step === 10) {
        await opt.sync();
        afterWarmup = created;
      }
    }
    await opt.sync();
    const during = created - afterWarmup;
    const dict = await opt.stateDictAsync();
    for (const s of dict.tensors[0].states) assert.ok(s.format === 'blockwise8' && s.absmax.every(Number.isFinite));
    t.diagnostic(`GPU buffers created: ${afterWarmup} in the first 10 steps, ${during} in the next 140`);
    assert.equal(during, 0, 'steps after warm-up create no buffers');
    opt.destroy();
    device.destroy();
  });
});
