/**
 * Memory accounting of bitopt/tfjs per backend, counted from outside (docs/tfjs.md "Memory"):
 * buffers and bytes, copies per step, what stays alive after a step. No timings.
 * - webgpu: bitopt's own GPU buffers (device.createBuffer outside tfjs's buffer manager) are
 *   its state and a few small ones; tfjs's bytes in use do not grow per step; a variable that
 *   only it holds is stepped with no copy; a shared one is moved with one.
 * - wasm: the step works on tfjs's heap: no JS array of the variable's size is allocated per
 *   step, memory stepped in place keeps its address, a clone keeps its values.
 * - cpu: one copy per step, and no earlier array stays alive (WeakRef after GC).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as bitopt from '../src/tfjs/index.js';
import { gcFunction } from './helpers/gc.js';
import './helpers/swiftshader.js';

const gc = gcFunction();
const require = createRequire(import.meta.url);
setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');

let gpuInstance: GPU | undefined; // keeps Dawn alive (docs/architecture.md §5)

async function webgpuSkip(): Promise<string | false> {
  try {
    const { create, globals } = (await import('webgpu')) as unknown as { create(o: string[]): GPU; globals: object };
    Object.assign(globalThis, globals);
    gpuInstance = create([]);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: gpuInstance }, configurable: true, writable: true });
    if (!(await gpuInstance.requestAdapter())) return 'no WebGPU adapter (docs/architecture.md §5)';
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) return 'the tfjs webgpu backend did not initialise';
    await tf.setBackend('cpu');
    return false;
  } catch (e) {
    return `WebGPU unavailable: ${(e as Error).message}`;
  }
}
const skipGpu = await webgpuSkip();

/** 8-bit Adam state of one tensor of n elements at block 256: 2 states, 1 code + 4/256 absmax bytes each. */
const state8 = (n: number) => 2 * (n + 4 * Math.ceil(n / 256));

const grads = (sizes: number[], t: number) => sizes.map((n, i) => tf.randomNormal([n], 0, 1, 'float32', 7 + 10 * t + i));

test('webgpu: bitopt holds only its state on the GPU, tfjs\'s bytes do not grow, and a step copies nothing', { skip: skipGpu }, async () => {
  await tf.setBackend('webgpu');
  const b = tf.engine().backend as unknown as { device: GPUDevice; bufferManager: { numBytesUsed: number; acquireBuffer: (...a: unknown[]) => GPUBuffer }; uploadToGPU(d: object): void };
  const device = b.device;
  // Count every buffer created outside tfjs's buffer manager (those are bitopt's), and every copy.
  const live = new Map<GPUBuffer, number>();
  let inTfjs = 0;
  let copies = 0;
  const acquire = b.bufferManager.acquireBuffer;
  b.bufferManager.acquireBuffer = function (...a: unknown[]) {
    inTfjs++;
    try {
      return acquire.apply(this, a);
    } finally {
      inTfjs--;
    }
  };
  const createBuffer = device.createBuffer;
  device.createBuffer = function (d: GPUBufferDescriptor) {
    const buf = createBuffer.call(this, d);
    if (inTfjs === 0) {
      live.set(buf, d.size);
      const destroy = buf.destroy.bind(buf);
      buf.destroy = () => {
        live.delete(buf);
        destroy();
      };
    }
    return buf;
  };
  const createEncoder = device.createCommandEncoder;
  device.createCommandEncoder = function (d?: GPUCommandEncoderDescriptor) {
    const enc = createEncoder.call(this, d);
    const copy = enc.copyBufferToBuffer.bind(enc);
    (enc as { copyBufferToBuffer: unknown }).copyBufferToBuffer = (...a: Parameters<GPUCommandEncoder['copyBufferToBuffer']>) => {
      copies++;
      return copy(...a);
    };
    return enc;
  };
  const sizes = [64 * 1024, 32 * 1024, 301];
  const vars = sizes.map((n, i) => tf.variable(tf.randomNormal([n], 0, 1, 'float32', 60 + i), true, `mem_gpu_${i}`));
  const opt = bitopt.adam8bit(1e-3, { min8bitSize: 256 });
  const step = (t: number) => {
    const g = grads(sizes, t);
    g.forEach((x) => b.uploadToGPU(x.dataId)); // the gradients' uploads are not the optimizer's
    copies = 0;
    opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: g[i] })));
    const made = copies;
    tf.dispose(g);
    return made;
  };
  try {
    step(0);
    step(1);
    await opt.getWeights().then((w) => tf.dispose(w.map((x) => x.tensor)));
    const before = { tfjs: b.bufferManager.numBytesUsed, tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, bitopt: [...live.values()].reduce((s, x) => s + x, 0) };
    const perStep = [step(2), step(3), step(4)];
    // 301 elements are not whole vec4s: that variable goes through a padded buffer (2 copies) and its gradient too (1).
    assert.deepEqual(perStep, [3, 3, 3], 'copies per step: none for the two vec4-sized variables');
    assert.equal(b.bufferManager.numBytesUsed, before.tfjs, 'tfjs GPU bytes in use after a step');
    assert.deepEqual([tf.memory().numTensors, tf.memory().numBytes], [before.tensors, before.bytes]);
    const held = [...live.values()];
    const total = held.reduce((s, x) => s + x, 0);
    assert.equal(total, before.bitopt, 'bitopt GPU bytes do not grow per step');
    const state = opt.stateBytes();
    assert.equal(state, state8(sizes[0]) + state8(sizes[1]) + 2 * Math.ceil(301 / 256) * (256 + 4), 'stateBytes (the GPU stores whole blocks)');
    // Besides the state: the uniforms and the 8-bit tables (a few KiB); a parameter copy would be 256 KiB.
    assert.ok(total - state <= 64 * 1024, `bitopt holds ${total} bytes for ${state} of state`);
    // A clone shares the variable's buffer: the variable is moved (one copy) and the clone keeps its values.
    const clone = tf.clone(vars[0]);
    const kept = (await clone.data()).slice();
    // + the move, + the gradient copied once so that the optimizer binds the moved buffer (src/kernels/webgpu/movable-params.ts).
    assert.equal(step(5), 3 + 1 + 1);
    assert.equal(step(6), 3, 'in place again from the next step');
    assert.deepEqual(await clone.data(), kept);
    assert.notDeepEqual(await vars[0].data(), kept);
    clone.dispose();
    // A cached CPU copy is never taken for the new values: read, step, read again.
    const read = (await vars[1].data()).slice();
    step(7);
    assert.notDeepEqual(await vars[1].data(), read);
  } finally {
    device.createBuffer = createBuffer;
    device.createCommandEncoder = createEncoder;
    b.bufferManager.acquireBuffer = acquire;
    opt.dispose();
    tf.dispose(vars);
    await tf.setBackend('cpu');
  }
});

test('wasm: the step works on tfjs\'s heap (no JS copy, in place, new tensor id), a clone keeps its values', async () => {
  await tf.setBackend('wasm');
  const b = tf.engine().backend as unknown as { getMemoryOffset(d: object): number; wasm: { HEAPU8: Uint8Array } };
  const n = 1 << 20;
  const v = tf.variable(tf.randomNormal([n], 0, 1, 'float32', 3), true, 'mem_wasm');
  const opt = bitopt.adam8bit(1e-3);
  const step = (t: number, g = grads([n], t)[0]) => {
    opt.applyGradients([{ name: v.name, tensor: g }]);
    g.dispose();
  };
  try {
    step(0);
    step(1);
    const offset = b.getMemoryOffset(v.dataId);
    const id = v.dataId;
    const heap = b.wasm.HEAPU8.length;
    const ref = (await v.data()).slice();
    const [g] = grads([n], 2); // made in JS by tfjs: not the step's
    gc();
    const arrays = process.memoryUsage().arrayBuffers;
    step(2, g);
    const grew = process.memoryUsage().arrayBuffers - arrays;
    assert.ok(grew < n, `a step allocated ${grew} bytes of JS arrays for a ${4 * n}-byte variable`);
    assert.equal(b.getMemoryOffset(v.dataId), offset, 'stepped in place');
    assert.notEqual(v.dataId, id, 'under a new tensor id (XNNPACK caches packed weights by id)');
    assert.equal(b.wasm.HEAPU8.length, heap);
    assert.notDeepEqual(await v.data(), ref);
    const clone = tf.clone(v);
    const kept = (await clone.data()).slice();
    step(3);
    assert.deepEqual(await clone.data(), kept);
    assert.notEqual(b.getMemoryOffset(v.dataId), b.getMemoryOffset(clone.dataId), 'moved to memory of its own');
    clone.dispose();
  } finally {
    opt.dispose();
    v.dispose();
    await tf.setBackend('cpu');
  }
});

test('cpu: one copy per step, and no earlier values array stays alive', async () => {
  await tf.setBackend('cpu');
  const n = 1 << 18;
  const v = tf.variable(tf.randomNormal([n], 0, 1, 'float32', 4), true, 'mem_cpu');
  const opt = bitopt.adam(1e-3);
  const held = v.dataSync() as Float32Array;
  const kept = held.slice();
  const refs: WeakRef<Float32Array>[] = [];
  for (let t = 0; t < 3; t++) {
    refs.push(new WeakRef(v.dataSync() as Float32Array));
    const [g] = grads([n], t);
    opt.applyGradients([{ name: v.name, tensor: g }]);
    g.dispose();
  }
  assert.deepEqual(held, kept, 'an array a caller holds is never written');
  await new Promise((r) => setTimeout(r, 0));
  gc();
  // refs[0] is `held` (still referenced here); the later ones were the variable's storage and must be gone.
  assert.deepEqual(refs.slice(1).map((r) => r.deref() === undefined), [true, true], 'no stepped array kept');
  assert.ok(refs[0].deref() === held);
  opt.dispose();
  v.dispose();
});

/** Steps two variables 6 times; a clone is held at step 2 and the user assigns a new value at step 4. */
async function movingRun(): Promise<Float32Array[]> {
  const sizes = [4096, 1001];
  const vars = sizes.map((n, i) => tf.variable(tf.randomNormal([n], 0, 1, 'float32', 80 + i), true, `mem_move_${tf.getBackend()}_${i}_${Math.random()}`));
  const opt = bitopt.adam8bit(1e-2, { min8bitSize: 256 });
  let clone: tf.Tensor | null = null;
  for (let t = 0; t < 6; t++) {
    if (t === 2) clone = tf.clone(vars[0]);
    if (t === 4) vars.forEach((v, i) => v.assign(tf.tidy(() => tf.mul(v, 0.5 + i))));
    const g = grads(sizes, t);
    opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: g[i] })));
    tf.dispose(g);
  }
  const out = await Promise.all([...vars, clone!].map(async (v) => (await v.data()) as Float32Array));
  tf.dispose([...vars, clone!]);
  opt.dispose();
  return out;
}

test('webgpu: variables that move (a clone held, a user assign) step like on the cpu backend', { skip: skipGpu }, async () => {
  await tf.setBackend('cpu');
  const cpu = await movingRun();
  await tf.setBackend('webgpu');
  const gpu = await movingRun();
  await tf.setBackend('cpu');
  cpu.forEach((c, i) => {
    let worst = 0;
    c.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - gpu[i][j]))));
    // float32 rounding of 6 steps of size ~1e-2 (tfjs-webgpu.test.ts measured 2.4e-7 for 8).
    assert.ok(worst < 1e-4, `tensor ${i}: max |Δp| ${worst}`);
  });
});
