/**
 * Memory of a tfjs training loop with tf.train.adam, bitopt 32-bit Adam, Adam8bit and Adam4bit on
 * one model, measured as a user meets it (docs/tfjs.md "Memory"):
 *   webgpu:  npx tsx packages/demo/bench/tfjs-memory.ts --backend webgpu [--width 4096 --layers 4 --batch 256 --steps 25]
 *            GPU bytes in use after `steps` minimize steps: every live buffer counted at
 *            device.createBuffer / destroy, tfjs's free pool excluded; bitopt's own buffers
 *            (those created outside tfjs's buffer manager) separately; ms per step.
 *   cpu|wasm: npx tsx packages/demo/bench/tfjs-memory.ts --backend wasm [--elements 8388608 --steps 5]
 *            process RSS growth over one variable of `elements` after `steps` applyGradients, after GC.
 * `--only <name part>` runs one optimizer: run each in a process of its own (a wasm heap never
 * shrinks, so a run after another measures the first one's leftovers).
 * Prints one table (markdown) and a JSON line.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as bitopt from 'bitopt/tfjs';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const backend = arg('backend', 'webgpu');
const steps = Number(arg('steps', backend === 'webgpu' ? '25' : '5'));

type Make = () => tf.Optimizer & { stateBytes?: () => number };
const OPTIMIZERS: [string, Make][] = [
  ['tf.train.adam', () => tf.train.adam(1e-4)],
  ['bitopt.adam (32-bit)', () => bitopt.adam(1e-4)],
  ['bitopt.adam8bit', () => bitopt.adam8bit(1e-4)],
  ['bitopt.adam4bit', () => bitopt.adam4bit(1e-4)],
];

interface Row {
  optimizer: string;
  params: number;
  bytesPerParam: number;
  bitoptBytesPerParam?: number;
  /** Most GPU bytes in use at any buffer allocation during the steps (tfjs's free pool excluded). */
  peakBytesPerParam?: number;
  tfMemoryBytes: number;
  msPerStep?: number;
  stateBytes?: number;
}

async function setup(): Promise<void> {
  if (backend === 'webgpu') {
    const { create, globals } = (await import('webgpu')) as unknown as { create(o: string[]): GPU; globals: object };
    Object.assign(globalThis, globals);
    const gpu = create([]);
    (globalThis as { keepDawn?: GPU }).keepDawn = gpu; // docs/architecture.md §5
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    await import('@tensorflow/tfjs-backend-webgpu');
  } else if (backend === 'wasm') {
    const { createRequire } = await import('node:module');
    const { dirname, join } = await import('node:path');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
  }
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
}

interface GpuBackend {
  device: GPUDevice;
  bufferManager: { numBytesUsed: number; acquireBuffer: (...a: unknown[]) => GPUBuffer };
}

/** Wraps createBuffer/destroy: bytes of live buffers created outside tfjs's buffer manager. */
let peak = 0;
function countGpu(b: GpuBackend): () => number {
  const live = new Map<GPUBuffer, number>();
  let inTfjs = 0;
  const own = () => [...live.values()].reduce((s, x) => s + x, 0);
  const acquire = b.bufferManager.acquireBuffer;
  b.bufferManager.acquireBuffer = function (...a: unknown[]) {
    inTfjs++;
    try {
      return acquire.apply(this, a);
    } finally {
      inTfjs--;
      peak = Math.max(peak, b.bufferManager.numBytesUsed + own());
    }
  };
  const create = b.device.createBuffer;
  b.device.createBuffer = function (d: GPUBufferDescriptor) {
    const buf = create.call(this, d);
    if (inTfjs === 0) {
      live.set(buf, d.size);
      peak = Math.max(peak, b.bufferManager.numBytesUsed + own());
      const destroy = buf.destroy.bind(buf);
      buf.destroy = () => {
        live.delete(buf);
        destroy();
      };
    }
    return buf;
  };
  return own;
}

async function gpuRun(name: string, make: Make, own: () => number): Promise<Row> {
  const width = Number(arg('width', '4096'));
  const layers = Number(arg('layers', '4'));
  const batch = Number(arg('batch', '256'));
  const b = tf.engine().backend as unknown as GpuBackend;
  const ws = Array.from({ length: layers }, (_, i) => tf.tidy(() => tf.variable(tf.randomNormal([width, width], 0, 1 / Math.sqrt(width), 'float32', i + 1), true, `m_${name}_${i}`)));
  const x = tf.randomNormal([batch, width], 0, 1, 'float32', 99);
  const y = tf.randomNormal([batch, width], 0, 1, 'float32', 98);
  const params = ws.reduce((s, w) => s + w.size, 0);
  const opt = make();
  const loss = () => tf.tidy(() => tf.mean(tf.square(tf.sub(ws.reduce<tf.Tensor>((h, w, i) => (i < layers - 1 ? tf.relu(tf.matMul(h, w)) : tf.matMul(h, w)), x), y))) as tf.Scalar);
  const bytesBefore = b.bufferManager.numBytesUsed + own();
  peak = 0;
  const times: number[] = [];
  let last = 0;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    const cost = opt.minimize(loss, true, ws)!;
    if (s === steps - 1) last = (await cost.data())[0];
    else await b.device.queue.onSubmittedWorkDone();
    cost.dispose();
    times.push(performance.now() - t0);
  }
  const inUse = b.bufferManager.numBytesUsed + own();
  const tfBytes = tf.memory().numBytes;
  const bitoptBytes = own();
  const sorted = times.slice(5).sort((p, q) => p - q);
  const row: Row = {
    optimizer: name,
    params,
    bytesPerParam: inUse / params,
    bitoptBytesPerParam: bitoptBytes / params,
    peakBytesPerParam: peak / params,
    tfMemoryBytes: tfBytes,
    msPerStep: sorted[Math.floor(sorted.length / 2)],
    stateBytes: opt.stateBytes?.(),
  };
  console.error(`# ${name}: loss ${last.toFixed(4)}, before the steps ${(bytesBefore / params).toFixed(2)} B/param in use`);
  opt.dispose();
  tf.dispose([...ws, x, y]);
  return row;
}

async function cpuRun(name: string, make: Make): Promise<Row> {
  const n = Number(arg('elements', String(8 * 1024 * 1024)));
  const v = tf.tidy(() => tf.variable(tf.randomNormal([n], 0, 1, 'float32', 5), true, `c_${name}`));
  const g = tf.randomNormal([n], 0, 1e-2, 'float32', 6);
  gc();
  const rss0 = process.memoryUsage().rss;
  const opt = make();
  for (let s = 0; s < steps; s++) opt.applyGradients([{ name: v.name, tensor: g }]);
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const rss = process.memoryUsage().rss - rss0;
  const row: Row = { optimizer: name, params: n, bytesPerParam: rss / n, tfMemoryBytes: tf.memory().numBytes, stateBytes: opt.stateBytes?.() };
  opt.dispose();
  tf.dispose([v, g]);
  return row;
}

await setup();
const own = backend === 'webgpu' ? countGpu(tf.engine().backend as unknown as GpuBackend) : () => 0;
const only = arg('only', '');
const rows: Row[] = [];
for (const [name, make] of OPTIMIZERS) {
  if (only && !name.includes(only)) continue;
  rows.push(backend === 'webgpu' ? await gpuRun(name, make, own) : await cpuRun(name, make));
}
const gpuCols = backend === 'webgpu';
console.log(`backend ${backend}, ${rows[0]?.params} parameters, ${steps} steps`);
console.log(gpuCols ? '| optimizer | GPU B/param in use after the steps | of which bitopt\'s buffers | peak in use during the steps | tf.memory() bytes | ms/step |' : '| optimizer | RSS growth B/param (after GC) | tf.memory() bytes | stateBytes |');
console.log(gpuCols ? '|---|---|---|---|---|---|' : '|---|---|---|---|');
for (const r of rows) {
  console.log(
    gpuCols
      ? `| ${r.optimizer} | ${r.bytesPerParam.toFixed(2)} | ${r.bitoptBytesPerParam!.toFixed(2)} | ${r.peakBytesPerParam!.toFixed(2)} | ${r.tfMemoryBytes} | ${r.msPerStep!.toFixed(1)} |`
      : `| ${r.optimizer} | ${r.bytesPerParam.toFixed(2)} | ${r.tfMemoryBytes} | ${r.stateBytes ?? '–'} |`,
  );
}
console.log(JSON.stringify({ backend, steps, rows }));
