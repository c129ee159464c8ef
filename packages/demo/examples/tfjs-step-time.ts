/**
 * Step time of bitopt's tfjs optimizers against tf.train.adam on the same model, per backend.
 *
 *   npx tsx packages/demo/examples/tfjs-step-time.ts [--backends cpu,wasm,webgpu] [--steps 20] [--hidden 512]
 *
 * Model: MLP 784 → hidden → hidden → 10 (batch 64). Two timings per optimizer, median of
 * `steps` after 3 warm-up steps:
 * - train step: model.trainOnBatch (forward, backward, optimizer), synced by reading the loss;
 * - optimizer only: applyGradients with fixed gradients, synced by reading one weight.
 * webgpu in Node needs a WebGPU adapter (SwiftShader: see docs/tfjs.md).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bitopt from 'bitopt/tfjs';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const backends = arg('backends', 'cpu,wasm').split(',');
const steps = Number(arg('steps', '20'));
const hidden = Number(arg('hidden', '512'));

let gpuInstance: unknown; // keeps Dawn alive (docs/architecture.md §5)
async function setup(backend: string): Promise<boolean> {
  if (backend === 'wasm') {
    const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
    setWasmPaths(new URL('dist/', pathToFileURL(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'))).pathname);
  }
  if (backend === 'webgpu') {
    // No GPU: SwiftShader from Debian's chromium package, if installed (docs/architecture.md §5).
    const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
    if (!process.env.VK_ICD_FILENAMES && existsSync(swiftshader)) process.env.VK_ICD_FILENAMES = swiftshader;
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    const { create, globals } = (await import('webgpu')) as unknown as { create(o: string[]): GPU; globals: object };
    Object.assign(globalThis, globals);
    const gpu = create([]);
    gpuInstance = gpu;
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    const adapter = await gpu.requestAdapter();
    if (!adapter) return false;
    const info = (adapter as unknown as { info?: { vendor?: string; architecture?: string; description?: string } }).info;
    console.log(`webgpu adapter: ${[info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ')}`);
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  return tf.setBackend(backend);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timeOptimizer(make: () => tf.Optimizer): Promise<{ train: number; opt: number; stateBytes: number | null }> {
  const model = tfl.sequential({ layers: [
    tfl.layers.dense({ units: hidden, inputShape: [784], activation: 'relu' }),
    tfl.layers.dense({ units: hidden, activation: 'relu' }),
    tfl.layers.dense({ units: 10, activation: 'softmax' }),
  ] });
  const optimizer = make();
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const x = tf.randomNormal([64, 784], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 10), 'int32'), 10);
  const train: number[] = [];
  for (let i = 0; i < steps + 3; i++) {
    const t0 = performance.now();
    await model.trainOnBatch(x, y); // returns the loss as a number: synced
    if (i >= 3) train.push(performance.now() - t0);
  }
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const grads = vars.map((v, i) => tf.randomNormal(v.shape, 0, 1e-2, 'float32', 10 + i));
  const opt: number[] = [];
  for (let i = 0; i < steps + 3; i++) {
    const t0 = performance.now();
    optimizer.applyGradients(vars.map((v, k) => ({ name: v.name, tensor: grads[k] })));
    await vars[0].data();
    if (i >= 3) opt.push(performance.now() - t0);
  }
  const stateBytes = optimizer instanceof bitopt.BitoptOptimizer ? optimizer.stateBytes() : null;
  tf.dispose([x, y, ...grads]);
  optimizer.dispose();
  model.dispose();
  return { train: median(train), opt: median(opt), stateBytes };
}

const candidates: [string, () => tf.Optimizer][] = [
  ['tf.train.adam', () => tf.train.adam(1e-3)],
  ['bitopt.adam (32-bit)', () => bitopt.adam(1e-3)],
  ['bitopt.adam8bit', () => bitopt.adam8bit(1e-3)],
];
const params = 784 * hidden + hidden + hidden * hidden + hidden + hidden * 10 + 10;
console.log(`MLP 784-${hidden}-${hidden}-10 (${params} parameters), batch 64, median of ${steps} steps (ms)`);
console.log('| backend | optimizer | train step | optimizer step | state B/param |');
console.log('|---|---|---|---|---|');
for (const backend of backends) {
  if (!(await setup(backend))) {
    console.log(`| ${backend} | (unavailable) | | | |`);
    continue;
  }
  for (const [name, make] of candidates) {
    const r = await timeOptimizer(make);
    const bpp = r.stateBytes === null ? '8 (tensors)' : (r.stateBytes / params).toFixed(2);
    console.log(`| ${backend} | ${name} | ${r.train.toFixed(1)} | ${r.opt.toFixed(1)} | ${bpp} |`);
  }
}
void gpuInstance;
