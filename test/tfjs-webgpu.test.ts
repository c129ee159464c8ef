/**
 * bitopt/tfjs on tfjs's webgpu backend (in Node through the `webgpu` package; SwiftShader where
 * there is no GPU, docs/architecture.md §5): bitopt's WGSL kernels step the backend's own buffers, and the
 * results equal the cpu backend's up to float32 rounding. Skips only when no adapter exists.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bitopt from '../src/tfjs/index.js';
import './helpers/swiftshader.js';

/** Keeps the Dawn instance alive as long as the process (docs/architecture.md §5). */
let gpuInstance: GPU | undefined;

async function webgpuAvailable(): Promise<string | false> {
  try {
    const { create, globals } = (await import('webgpu')) as unknown as { create(o: string[]): GPU; globals: object };
    Object.assign(globalThis, globals);
    gpuInstance = create([]);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: gpuInstance }, configurable: true, writable: true });
    if (!(await gpuInstance.requestAdapter())) return 'no WebGPU adapter (install chromium for SwiftShader, see docs/architecture.md §5)';
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) return 'the tfjs webgpu backend did not initialise';
    await tf.setBackend('cpu');
    return false;
  } catch (e) {
    return `WebGPU unavailable: ${(e as Error).message}`;
  }
}

const skip = await webgpuAvailable();
if (skip) console.log(`# tfjs webgpu tests skipped: ${skip}`);

/** Steps one variable per size with `make()` on the current backend; returns the final values. */
async function fixedRun(make: () => bitopt.BitoptOptimizer, sizes: number[], steps: number): Promise<{ values: Float32Array[]; weights: Float32Array[] }> {
  const opt = make();
  const vars = sizes.map((n, i) => tf.variable(tf.randomNormal([n], 0, 1, 'float32', 10 + i), true, `wg_${tf.getBackend()}_${i}_${Math.random()}`));
  for (let t = 0; t < steps; t++) {
    const grads = sizes.map((n, i) => tf.randomNormal([n], 0.1, 1, 'float32', 1 + 100 * t + i)); // seed 0 would mean unseeded
    opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: grads[i] })));
    tf.dispose(grads);
  }
  const values = await Promise.all(vars.map(async (v) => (await v.data()) as Float32Array));
  const w = await opt.getWeights();
  const weights = await Promise.all(w.slice(1).filter((x) => x.tensor.dtype === 'float32').map(async (x) => (await x.tensor.data()) as Float32Array));
  tf.dispose([...vars, ...w.map((x) => x.tensor)]);
  opt.dispose();
  return { values, weights };
}

test('webgpu backend: Adam8bit and Adam give the cpu backend\'s parameters (fixed gradients, 8 steps)', { skip }, async () => {
  // 5003: partial block and partial vec4 (gradient padded); 4096: gradient bound in place.
  const sizes = [5003, 4096, 300];
  for (const make of [() => bitopt.adam8bit(1e-2, { min8bitSize: 256 }), () => bitopt.adam(1e-2)]) {
    await tf.setBackend('cpu');
    const cpu = await fixedRun(make, sizes, 8);
    await tf.setBackend('webgpu');
    const gpu = await fixedRun(make, sizes, 8);
    await tf.setBackend('cpu');
    const lr = 1e-2;
    cpu.values.forEach((c, i) => {
      let worst = 0;
      let sum = 0;
      c.forEach((v, j) => {
        const d = Math.abs(v - gpu.values[i][j]);
        worst = Math.max(worst, d);
        sum += d;
      });
      // Float32 rounding of 8 updates of size <= ~lr: ~1e-6·lr each. An 8-bit code that lands
      // on the other side of a near-tie moves one state element by one map step, changing that
      // element's later updates by a few % of lr: bounded by 8 steps · 0.1·lr, and rare
      // (measured on SwiftShader: max 2.4e-7, mean 3e-9: no code differed).
      assert.ok(worst < 0.8 * lr, `${make().getClassName()} tensor ${i}: max |Δp| ${worst}`);
      assert.ok(sum / c.length < 1e-5 * lr, `${make().getClassName()} tensor ${i}: mean |Δp| ${sum / c.length}`);
    });
  }
});

test('webgpu backend: Adam4bit gives the cpu backend\'s parameters; its 4-bit state reads back from the GPU', { skip }, async () => {
  // 5003: odd (an unused last nibble), a partial block and vec4; 4096: bound in place.
  const sizes = [5003, 4096];
  const make = () => bitopt.adam4bit(1e-2, { min8bitSize: 256 });
  await tf.setBackend('cpu');
  const cpu = await fixedRun(make, sizes, 8);
  await tf.setBackend('webgpu');
  const gpu = await fixedRun(make, sizes, 8);
  const lr = 1e-2;
  cpu.values.forEach((c, i) => {
    let worst = 0;
    c.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - gpu.values[i][j]))));
    const far = c.filter((x, j) => Math.abs(x - gpu.values[i][j]) > 1e-6).length;
    // As for 8 bits: float32 rounding (measured on SwiftShader: 2.4e-7), and rarely an element
    // whose code took the other side of a near-tie (x·(1/absmax) on the GPU, x/absmax on the
    // CPU) and so one 4-bit level (up to ~0.25 of absmax): its later updates move by up to ~lr
    // (measured: 1 element of 4096, 8.8e-3).
    assert.ok(worst < 2 * lr, `Adam4bit tensor ${i}: max |Δp| ${worst}`);
    assert.ok(far <= Math.max(2, c.length * 1e-3), `Adam4bit tensor ${i}: ${far} elements differ by more than 1e-6`);
  });
  assert.equal(gpu.weights.length, cpu.weights.length, 'optimizer weights');
  // A webgpu step writes 4-bit state: two codes per byte.
  const v = tf.variable(tf.randomNormal([5003], 0, 1, 'float32', 5), true, `w4_${Math.random()}`);
  const opt = make();
  const g = tf.randomNormal([5003], 0, 1, 'float32', 6);
  opt.applyGradients([{ name: v.name, tensor: g }]);
  const states = await bitopt.decodeVariableStates((await opt.getWeights()).slice(1));
  assert.deepEqual(states[0].dict.tensors[0].states.map((s) => s.format), ['blockwise4', 'blockwise4']);
  assert.equal(states[0].dict.tensors[0].states[0].format === 'blockwise4' && states[0].dict.tensors[0].states[0].codes.length, 2502);
  tf.dispose([v, g]);
  opt.dispose();
  await tf.setBackend('cpu');
});

test('webgpu backend: model.fit with adam8bit trains; getWeights reads the 8-bit state back from the GPU', { skip }, async () => {
  await tf.setBackend('webgpu');
  const x = tf.randomNormal([64, 8], 0, 1, 'float32', 1);
  const y = tf.sin(tf.sum(x, 1, true));
  const m = tfl.sequential({ layers: [
    tfl.layers.dense({ units: 128, inputShape: [8], activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
    tfl.layers.dense({ units: 64, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
    tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }),
  ] });
  const opt = bitopt.adam8bit(3e-3);
  m.compile({ optimizer: opt, loss: 'meanSquaredError' });
  const h = await m.fit(x, y, { epochs: 15, batchSize: 16, shuffle: false, verbose: 0 });
  const loss = h.history.loss as number[];
  assert.ok(loss.at(-1)! < 0.7 * loss[0], `loss fell from ${loss[0]} to ${loss.at(-1)}`);
  assert.equal(opt.stepCount(m.trainableWeights[2].read() as tf.Variable), 60);
  // The 128×64 kernel: 8-bit state (2 B/param + absmax) read back from the GPU.
  const states = await bitopt.decodeVariableStates((await opt.getWeights()).slice(1));
  const big = states.find((s) => s.shape.join() === '128,64')!;
  assert.deepEqual(big.dict.tensors[0].states.map((s) => s.format), ['blockwise8', 'blockwise8']);
  assert.equal(big.dict.tensors[0].step, 60);
  tf.dispose([x, y]);
  await tf.setBackend('cpu');
});

test('webgpu backend: optimizer weights saved on the cpu backend restore on webgpu and continue like the cpu', { skip }, async () => {
  const n = 6000;
  const steps = (opt: tf.Optimizer, v: tf.Variable, from: number) => {
    for (let t = from; t < from + 4; t++) {
      const g = tf.randomNormal([n], 0.1, 1, 'float32', 7 + t);
      opt.applyGradients([{ name: v.name, tensor: g }]);
      g.dispose();
    }
  };
  await tf.setBackend('cpu');
  const v = tf.variable(tf.randomNormal([n], 0, 1, 'float32', 3), true, 'restore_cpu');
  const opt = bitopt.adam8bit(1e-2);
  steps(opt, v, 0);
  const saved = await opt.getWeights();
  const savedValues = (await v.data()) as Float32Array;
  steps(opt, v, 4);
  const cpu = (await v.data()) as Float32Array;
  const savedCopies = await Promise.all(saved.map(async (w) => ({ name: w.name, values: await w.tensor.data(), shape: w.tensor.shape, dtype: w.tensor.dtype })));
  await tf.setBackend('webgpu');
  const vg = tf.variable(tf.tensor(savedValues, [n]), true, 'restore_gpu');
  const restored = bitopt.adam8bit(1e-2);
  await restored.setWeights(savedCopies.map((w) => ({ name: w.name, tensor: tf.tensor(w.values, w.shape, w.dtype) })));
  steps(restored, vg, 4);
  const gpu = (await vg.data()) as Float32Array;
  let worst = 0;
  cpu.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - gpu[j]))));
  assert.ok(worst < 1e-5, `max |Δp| ${worst}`);
  assert.equal(restored.stepCount(vg), 8);
  await tf.setBackend('cpu');
});

test('webgpu backend: one engine for all variables, one submit per step (plus tfjs\'s own copy into each assigned tensor)', { skip }, async () => {
  await tf.setBackend('webgpu');
  const queue = (tf.engine().backend as unknown as { device: GPUDevice }).device.queue;
  const sizes = [5003, 4096, 300];
  const vars = sizes.map((n, i) => tf.variable(tf.randomNormal([n], 0, 1, 'float32', 60 + i), true, `one_submit_${i}`));
  const opt = bitopt.adam8bit(1e-2, { min8bitSize: 256 });
  const submits: number[] = [];
  const original = queue.submit;
  const step = (which: number[], t: number) => {
    const grads = which.map((i) => tf.randomNormal([sizes[i]], 0.1, 1, 'float32', 5 + 10 * t + i));
    // Uploaded before counting: the gradients' own uploads are not the optimizer's.
    grads.forEach((g) => (tf.engine().backend as unknown as { uploadToGPU(d: object): void }).uploadToGPU(g.dataId));
    let n = 0;
    queue.submit = function (buffers: Iterable<GPUCommandBuffer>) {
      n++;
      return original.call(this, buffers);
    };
    try {
      opt.applyGradients(which.map((i, k) => ({ name: vars[i].name, tensor: grads[k] })));
    } finally {
      queue.submit = original;
    }
    submits.push(n);
    tf.dispose(grads);
  };
  try {
    step([0, 1, 2], 0);
    step([0, 1, 2], 1);
    step([1], 2);
    // Before: per variable, tfjs's submit of the copies, the engine's and tfjs's copy of the result (3 each).
    assert.deepEqual(submits, [1, 1, 1]);
    assert.deepEqual(vars.map((v) => opt.stepCount(v)), [2, 3, 2]);
    const states = await bitopt.decodeVariableStates((await opt.getWeights()).slice(1));
    assert.deepEqual(states.map((s) => [s.name, s.dict.tensors.length, s.dict.tensors[0].step]), [['one_submit_0', 1, 2], ['one_submit_1', 1, 3], ['one_submit_2', 1, 2]]);
    // An engine on GPU buffers cannot go on when the backend changes.
    await tf.setBackend('cpu');
    assert.throws(() => opt.applyGradients([{ name: vars[0].name, tensor: tf.zeros([sizes[0]]) }]), /stepped on the webgpu backend and the backend is now 'cpu'/);
  } finally {
    await tf.setBackend('webgpu');
    opt.dispose();
    tf.dispose(vars);
    await tf.setBackend('cpu');
  }
});

test('webgpu backend: a step WebGPU rejects makes the next applyGradients throw (its gradients are not dropped silently); a retry steps', { skip }, async () => {
  await tf.setBackend('webgpu');
  const b = tf.backend() as unknown as { device: GPUDevice; submitQueue(): void };
  const opt = bitopt.adam8bit(1e-2, { min8bitSize: 256 });
  const v = tf.variable(tf.randomNormal([4096], 0, 1, 'float32', 3), true, `wg_fail_${Math.random()}`);
  const g = tf.randomNormal([4096], 0, 1, 'float32', 4);
  opt.applyGradients([{ name: v.name, tensor: g }]);
  // The next step's submit also makes an invalid buffer (MAP_READ with STORAGE) inside the
  // optimizer's error scope: WebGPU reports a validation error for that step, asynchronously.
  const submit = b.submitQueue.bind(b);
  b.submitQueue = () => {
    b.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    submit();
    b.submitQueue = submit;
  };
  opt.applyGradients([{ name: v.name, tensor: g }]);
  await b.device.queue.onSubmittedWorkDone();
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20)); // the error scope's result
  const before = opt.iterations;
  assert.throws(() => opt.applyGradients([{ name: v.name, tensor: g }]), /not applied/);
  assert.equal(opt.iterations, before, 'the refused call counts no iteration');
  opt.applyGradients([{ name: v.name, tensor: g }]); // reported once: the retry steps
  assert.equal(opt.iterations, before + 1);
  assert.ok((await opt.getWeights()).length > 0);
  opt.dispose();
  tf.dispose([v, g]);
  await tf.setBackend('cpu');
});
