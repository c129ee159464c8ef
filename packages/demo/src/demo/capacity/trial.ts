/**
 * One capacity trial: in this process, on tfjs's wasm backend with the heap guard, build the
 * MLP of one width, train it `steps` steps with one optimizer, and report what each memory
 * held. An out-of-memory failure is a result (which memory, and the error's message), not a
 * crash. Run each trial in a fresh process (./trial-worker.ts): a heap that failed, or grew for
 * a bigger model, would otherwise carry over to the next trial.
 */
import { allocFloat32 } from 'bitopt';
import { initTf } from '../backend.js';
import { tf } from '../tf.js';
import { guardTfjsHeap, OutOfMemoryError, outOfMemoryKind, WASM32_LIMIT, type HeapStats } from './heap.js';
import type { OomMemory } from './heap.js';
import { buildMlp, mlpConfig, mlpParams } from './model.js';

export const CAPACITY_OPTIMIZERS = ['tf.train.adam', 'bitopt.adam8bit', 'bitopt.adam4bit'] as const;
export type CapacityOptimizer = (typeof CAPACITY_OPTIMIZERS)[number];

export interface TrialJob {
  optimizer: CapacityOptimizer;
  width: number;
  steps: number;
  /** Base learning rate (see learningRate). */
  lr: number;
  seed: number;
  /** Budget on tfjs's live tensor bytes; undefined: the heap's real 4 GiB. */
  budgetBytes?: number;
  /**
   * 'tfjs': the wall is tfjs's heap (bitopt's state lives in its own memory, limited apart).
   * 'combined': tfjs's tensors and bitopt's kernel memory share the budget (default 4 GiB).
   */
  wall: 'tfjs' | 'combined';
}

export interface TrialMemory {
  tfjs: HeapStats;
  /** `tf.memory().numBytes` after the last step (tfjs's live tensors). */
  tfjsTensorBytes: number;
  /** bitopt's optimizer state (`stateBytes()`); 0 for tf.train.adam (its m and v are tfjs tensors). */
  stateBytes: number;
  /** Size of bitopt's own WebAssembly memory (its kernel: state, staging, tables), 0 if never used. */
  bitoptKernelBytes: number;
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

/** Runs one trial in this process; `onStep` sees each step's loss. */
export async function runTrial(job: TrialJob, onStep: (step: number, loss: number) => void = () => {}): Promise<TrialResult> {
  const config = mlpConfig(job.width);
  const result: TrialResult = { job, params: mlpParams(config), outcome: 'ok', losses: [], stepMs: [] };
  const chosen = await initTf('wasm');
  if (chosen !== 'wasm') throw new Error('the capacity run needs the tfjs wasm backend (@tensorflow/tfjs-backend-wasm), which did not start');
  const bitoptUsed = job.optimizer !== 'tf.train.adam';
  // bitopt's kernel memory as of the last step: it grows at the first step (the state) and
  // then stays, so a combined budget checks it at each tfjs allocation and after each step.
  let kernelBytes = 0;
  const combined = job.wall === 'combined';
  const budget = job.budgetBytes ?? (combined ? WASM32_LIMIT : undefined);
  const guard = guardTfjsHeap(budget, () => (combined ? kernelBytes : 0));
  const optimizer = await makeOptimizer(job.optimizer, learningRate(job.lr, job.width));
  let phase = 'build';
  try {
    const wasmBackend = tf.backend() as unknown as { typedArrayFromHeap(t: tf.Tensor): Float32Array };
    const model = buildMlp(config, job.seed, (t, f) => f(wasmBackend.typedArrayFromHeap(t)));
    for (let s = 0; s < job.steps; s++) {
      phase = `step ${s + 1}`;
      const t0 = performance.now();
      const loss = optimizer.minimize(() => model.loss(s), true, model.variables)!;
      const value = (await loss.data())[0];
      loss.dispose();
      result.stepMs.push(performance.now() - t0);
      if (combined && bitoptUsed) {
        kernelBytes = bitoptKernelBytes(true);
        const peak = guard.stats().peakLiveBytes;
        if (peak + kernelBytes > budget!) {
          throw new OutOfMemoryError(`out of memory: tfjs tensors (peak ${peak} bytes) and bitopt's kernel memory (${kernelBytes}) exceed the combined budget of ${budget}`, 'combined-budget');
        }
      }
      result.losses.push(value);
      onStep(s + 1, value);
      if (!Number.isFinite(value)) throw new Error(`the loss is ${value} at step ${s + 1}: training diverged`);
    }
    result.memory = {
      tfjs: guard.stats(),
      tfjsTensorBytes: tf.memory().numBytes,
      stateBytes: optimizer.stateBytes?.() ?? 0,
      bitoptKernelBytes: bitoptKernelBytes(bitoptUsed),
      rssBytes: process.memoryUsage().rss,
    };
  } catch (e) {
    // tfjs's C++ does not check its own allocations (XNNPACK's packed weights, scratch): at a full
    // heap it runs on with a null pointer and traps. A trap with the heap at its limit is that.
    const heapFull = guard.stats().heapBytes >= WASM32_LIMIT - HEAP_FULL_MARGIN;
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
    result.memory = { tfjs: guard.stats(), tfjsTensorBytes: tf.memory().numBytes, stateBytes, bitoptKernelBytes: bitoptKernelBytes(bitoptUsed), rssBytes: process.memoryUsage().rss };
  }
  return result;
}
