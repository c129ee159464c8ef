/**
 * One capacity trial: in this process, on tfjs's wasm backend with the heap guard (or its webgpu
 * backend with the GPU-memory guard, ./gpu-budget.ts), build the
 * MLP of one width, train it `steps` steps with one optimizer, and report what each memory
 * held. An out-of-memory failure is a result (which memory, and the error's message), not a
 * crash. Run each trial in a fresh process (./trial-worker.ts): a heap that failed, or grew for
 * a bigger model, would otherwise carry over to the next trial.
 */
import { allocFloat32 } from 'bitopt';
import { initTf } from '../backend.js';
import { tf } from '../tf.js';
import { webgpuAdapterName } from '../webgpu.js';
import { guardGpuMemory, type GpuGuard, type GpuStats } from './gpu-budget.js';
import { guardTfjsHeap, OutOfMemoryError, outOfMemoryKind, WASM32_LIMIT, type HeapGuard, type HeapStats } from './heap.js';
import type { OomMemory } from './heap.js';
import { buildMlp, mlpConfig, mlpParams } from './model.js';

export const CAPACITY_OPTIMIZERS = ['tf.train.adam', 'bitopt.adam8bit', 'bitopt.adam4bit'] as const;
export type CapacityOptimizer = (typeof CAPACITY_OPTIMIZERS)[number];

/** Where a capacity trial trains: tfjs-wasm (its heap is the wall) or tfjs-webgpu (a GPU-memory budget). */
export type CapacityBackend = 'wasm' | 'webgpu';

/**
 * The memory a search's wall counts: 'tfjs' (tfjs-wasm's heap), 'combined' (that heap's tensors
 * plus bitopt's kernel memory) or 'gpu' (every live GPUBuffer on the device, tfjs's and bitopt's).
 */
export type Wall = 'tfjs' | 'combined' | 'gpu';

export interface TrialJob {
  optimizer: CapacityOptimizer;
  /** Absent: 'wasm' (results written before the webgpu variant). */
  backend?: CapacityBackend;
  width: number;
  steps: number;
  /** Base learning rate (see learningRate). */
  lr: number;
  seed: number;
  /** wasm: budget on tfjs's live tensor bytes (undefined: the heap's real 4 GiB); webgpu: on live GPU buffer bytes (required). */
  budgetBytes?: number;
  /**
   * 'tfjs': the wall is tfjs's heap (bitopt's state lives in its own memory, limited apart).
   * 'combined': tfjs's tensors and bitopt's kernel memory share the budget (default 4 GiB).
   * 'gpu' (webgpu only): all GPU buffers, tfjs's and bitopt's, share the budget.
   */
  wall: Wall;
}

export interface TrialMemory {
  /**
   * wasm: tfjs's heap. webgpu: tfjs's GPU buffers, in the same fields: `heapBytes` tfjs's bytes
   * at the peak with its free pool, `peakLiveBytes` without the pool (buffers in use), `liveBytes`
   * in use at the end, `limitBytes` the budget.
   */
  tfjs: HeapStats;
  /** `tf.memory().numBytes` after the last step (tfjs's live tensors). */
  tfjsTensorBytes: number;
  /** `tf.memory()` after the last step (on webgpu with numBytesInGPU and numBytesAllocatedInGPU). */
  tfMemory?: { numBytes: number; numTensors: number; numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
  /** bitopt's optimizer state (`stateBytes()`); 0 for tf.train.adam (its m and v are tfjs tensors). */
  stateBytes: number;
  /** wasm: size of bitopt's own WebAssembly memory (its kernel: state, staging, tables), 0 if never used. webgpu: bitopt's GPU buffers at the peak. */
  bitoptKernelBytes: number;
  /** webgpu: the device-level count (./gpu-budget.ts). */
  gpu?: GpuStats;
  rssBytes: number;
}

export interface TrialResult {
  job: TrialJob;
  params: number;
  /** 'ok': every step ran; 'oom': an allocation did not fit; 'error': anything else (a bug, not a limit). */
  outcome: 'ok' | 'oom' | 'error';
  /** Which memory was full, for 'oom'. */
  oomMemory?: OomMemory | 'process';
  error?: string;
  /** The phase the trial reached: 'build' (allocating the model) or the step it failed in. */
  failedAt?: string;
  losses: number[];
  /** Wall time of each step (forward, backward, update, loss read back), ms. */
  stepMs: number[];
  memory?: TrialMemory;
  /** webgpu: the adapter the trial ran on. */
  gpu?: string;
}

/** A heap this close to 4 GiB cannot grow for another tensor of the sizes a trial allocates. */
const HEAP_FULL_MARGIN = 64 * 1024 * 1024;

/**
 * Adam's learning rate for a width: base × 1024 / width above 1024, so that one step changes
 * the network's output by about as much at every width (the wider, the more inputs each
 * weight update adds up over); a fixed rate makes the widest models' loss rise at first.
 */
export function learningRate(base: number, width: number): number {
  return base * Math.min(1, 1024 / width);
}

/** Bytes of bitopt's kernel memory: a view's buffer is that memory at the time it was made. */
function bitoptKernelBytes(used: boolean): number {
  if (!used) return 0;
  try {
    return allocFloat32(1).buffer.byteLength;
  } catch {
    return NaN; // the kernel memory is full: even 4 bytes do not fit
  }
}

async function makeOptimizer(name: CapacityOptimizer, lr: number): Promise<tf.Optimizer & { stateBytes?: () => number }> {
  if (name === 'tf.train.adam') return tf.train.adam(lr);
  const bitopt = await import('bitopt/tfjs');
  return name === 'bitopt.adam8bit' ? bitopt.adam8bit(lr) : bitopt.adam4bit(lr);
}

/** The GPU guard's count in the wasm heap's fields (see TrialMemory.tfjs). */
function gpuAsHeapStats(g: GpuStats): HeapStats {
  return { heapBytes: g.peak.tfjs, liveBytes: g.now.tfjs - g.now.tfjsPool, peakLiveBytes: g.peak.tfjs - g.peak.tfjsPool, limitBytes: g.budgetBytes };
}

/** wasm: weights are written in place in tfjs's heap, no transient copy inside the wall. */
function heapFill(): (t: tf.Tensor, f: (a: Float32Array) => void) => void {
  const wasmBackend = tf.backend() as unknown as { typedArrayFromHeap(t: tf.Tensor): Float32Array };
  return (t, f) => f(wasmBackend.typedArrayFromHeap(t));
}

/** webgpu: a GPU buffer cannot be written in place from JS; the values are uploaded and assigned (one layer's transient buffer). */
function uploadFill(v: tf.Tensor, f: (a: Float32Array) => void): void {
  const a = new Float32Array(v.size);
  f(a);
  const t = tf.tensor(a, v.shape);
  (v as tf.Variable).assign(t);
  t.dispose();
}

/** Runs one trial in this process; `onStep` sees each step's loss. */
export async function runTrial(job: TrialJob, onStep: (step: number, loss: number) => void = () => {}): Promise<TrialResult> {
  const config = mlpConfig(job.width);
  const result: TrialResult = { job, params: mlpParams(config), outcome: 'ok', losses: [], stepMs: [] };
  const onGpu = job.backend === 'webgpu';
  if (onGpu !== (job.wall === 'gpu')) throw new Error(`capacity trial: the wall '${job.wall}' does not go with the ${job.backend ?? 'wasm'} backend`);
  const chosen = await initTf(onGpu ? 'webgpu' : 'wasm');
  if (!onGpu && chosen !== 'wasm') throw new Error('the capacity run needs the tfjs wasm backend (@tensorflow/tfjs-backend-wasm), which did not start');
  if (onGpu) result.gpu = webgpuAdapterName();
  const bitoptUsed = job.optimizer !== 'tf.train.adam';
  // bitopt's kernel memory as of the last step: it grows at the first step (the state) and
  // then stays, so a combined budget checks it at each tfjs allocation and after each step.
  let kernelBytes = 0;
  const combined = job.wall === 'combined';
  const budget = job.budgetBytes ?? (combined ? WASM32_LIMIT : undefined);
  if (onGpu && budget === undefined) throw new Error('capacity trial on webgpu: a GPU memory budget (budgetBytes) is required');
  const heap: HeapGuard | undefined = onGpu ? undefined : guardTfjsHeap(budget, () => (combined ? kernelBytes : 0));
  const gpu: GpuGuard | undefined = onGpu ? guardGpuMemory(budget!) : undefined;
  const stats = (): HeapStats => (heap ? heap.stats() : gpuAsHeapStats(gpu!.stats()));
  const memory = (stateBytes: number): TrialMemory => {
    const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
    const g = gpu?.stats();
    return {
      tfjs: stats(),
      tfjsTensorBytes: m.numBytes,
      tfMemory: { numBytes: m.numBytes, numTensors: m.numTensors, ...(m.numBytesInGPU !== undefined ? { numBytesInGPU: m.numBytesInGPU } : {}), ...(m.numBytesAllocatedInGPU !== undefined ? { numBytesAllocatedInGPU: m.numBytesAllocatedInGPU } : {}) },
      stateBytes,
      bitoptKernelBytes: g ? g.peak.bitopt : bitoptKernelBytes(bitoptUsed),
      ...(g ? { gpu: g } : {}),
      rssBytes: process.memoryUsage().rss,
    };
  };
  const optimizer = await makeOptimizer(job.optimizer, learningRate(job.lr, job.width));
  if (gpu && bitoptUsed) {
    const apply = optimizer.applyGradients.bind(optimizer);
    optimizer.applyGradients = (v) => gpu.withoutSubmit(() => apply(v));
  }
  let phase = 'build';
  try {
    const model = buildMlp(config, job.seed, onGpu ? uploadFill : heapFill());
    for (let s = 0; s < job.steps; s++) {
      phase = `step ${s + 1}`;
      const t0 = performance.now();
      const loss = optimizer.minimize(() => model.loss(s), true, model.variables)!;
      const value = (await loss.data())[0];
      loss.dispose();
      result.stepMs.push(performance.now() - t0);
      if (combined && bitoptUsed) {
        kernelBytes = bitoptKernelBytes(true);
        const peak = stats().peakLiveBytes;
        if (peak + kernelBytes > budget!) {
          throw new OutOfMemoryError(`out of memory: tfjs tensors (peak ${peak} bytes) and bitopt's kernel memory (${kernelBytes}) exceed the combined budget of ${budget}`, 'combined-budget');
        }
      }
      result.losses.push(value);
      onStep(s + 1, value);
      if (!Number.isFinite(value)) throw new Error(`the loss is ${value} at step ${s + 1}: training diverged`);
    }
    result.memory = memory(optimizer.stateBytes?.() ?? 0);
  } catch (e) {
    // tfjs's C++ does not check its own allocations (XNNPACK's packed weights, scratch): at a full
    // heap it runs on with a null pointer and traps. A trap with the heap at its limit is that.
    const heapFull = !onGpu && stats().heapBytes >= WASM32_LIMIT - HEAP_FULL_MARGIN;
    const trapAtLimit = heapFull && e instanceof WebAssembly.RuntimeError;
    const kind = outOfMemoryKind(e) ?? (trapAtLimit ? 'tfjs-heap' : undefined);
    result.outcome = kind ? 'oom' : 'error';
    if (kind) result.oomMemory = kind;
    result.error = (trapAtLimit ? `tfjs's wasm code trapped with its heap at the 4 GiB limit (an internal allocation failed): ` : '') + (e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    result.failedAt = phase;
    // What the memories held when it failed (the heap is where it stopped).
    let stateBytes = NaN;
    try {
      stateBytes = optimizer.stateBytes?.() ?? 0;
    } catch {
      // an engine that failed half-way may not count: NaN says unknown
    }
    result.memory = memory(stateBytes);
  }
  return result;
}
