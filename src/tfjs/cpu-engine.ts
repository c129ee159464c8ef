/**
 * The variables' optimizer on the CPU, for the tfjs backends whose data can be read
 * synchronously: `cpu`, `wasm` and `webgl` (and `webgpu` in a browser, slowly). One bitopt core
 * optimizer holds every variable of the tfjs optimizer (a variable joins at its first step) and
 * steps them with a synchronous CPU kernel, one `stepSync` per `applyGradients`.
 *
 * Copies per step and variable (n = its elements), the fewest each backend allows:
 * - wasm: none by tfjs. The values and the gradient are views into tfjs's wasm heap; a variable
 *   whose heap memory only it holds (refCount 1, not read as a gradient this step) is stepped in
 *   place there, else into new heap memory it is assigned (1 copy; other holders keep theirs).
 *   Either way the variable then gets a new tensor id for its memory: tfjs-wasm caches XNNPACK
 *   operators with the weights packed, keyed by tensor id, and drops them when that id is
 *   disposed; under the old id a matmul would go on using the weights as they were.
 * - cpu: 1. `dataSync()` hands out the backend's own array, and a caller may still hold it, so
 *   the values are stepped in a copy that `assign(tf.tensor(copy))` gives the backend as is.
 *   The gradient is read where it is.
 * - webgl (and others): `dataSync()` reads values and gradient back and caches them (2), the
 *   values are stepped in a copy of that cache (1), `assign` uploads it (1).
 * Inside the WebAssembly kernel the values and gradient are staged into its own memory and the
 * values back (src/kernels/cpu/wasm-kernel.ts); the reference kernel works in place.
 * Between steps the core holds, for each variable, a placeholder array that is never written or
 * read: its zero pages are never touched, so the OS never backs them (no resident memory; a
 * few KiB for small variables). No copy of any variable's values is kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createReferenceKernel } from '../kernels/cpu/reference.js';
import { createWasmKernel } from '../kernels/cpu/wasm-kernel.js';
import { wasmKernelsSupported } from '../kernels/cpu/wasm-runtime.js';
import type { CpuKernel } from '../optim/kernel.js';
import type { BaseOptions, Optimizer, Params } from '../optim/optimizer.js';
import type { StateDict } from '../optim/statedict.js';
import type { CoreClass, JoinInit, StepItem, TfjsEngine } from './engine.js';

let sharedKernel: CpuKernel | undefined;

/** A kernel that answers synchronously: WebAssembly SIMD on one thread where available. */
export function syncCpuKernel(): CpuKernel {
  sharedKernel ??= wasmKernelsSupported() ? createWasmKernel({ threads: 1 }) : createReferenceKernel();
  return sharedKernel;
}

/** The parts of tfjs-backend-wasm's BackendWasm this path uses (4.x). */
interface WasmBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  refCount(dataId: object): number;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: number): tf.TensorInfo;
}

/** How a variable is stepped: the array the kernel updates, and the tensor to assign after (none: in place). */
interface Stepped {
  values: Float32Array;
  assign: tf.Tensor | null;
}

/** Per-step copy counts, for tests and the memory notes (docs/tfjs.md "Memory"). */
export interface CpuStepStats {
  inPlace: number;
  copies: number;
  copyBytes: number;
}

export class CpuEngine<O extends BaseOptions> implements TfjsEngine {
  readonly kind = 'cpu';
  private readonly core: Optimizer<O>;
  /** Per variable, the placeholder the core holds between steps (never written). */
  private readonly keys: Float32Array[] = [];
  /** What the last step did. */
  lastStep: CpuStepStats = { inPlace: 0, copies: 0, copyBytes: 0 };

  constructor(cls: CoreClass<O>, options: O) {
    // One group, no parameters yet: variables join as they first appear.
    this.core = new cls([{ params: [] }] as unknown as Params<O>, options);
    this.core.setKernel(syncCpuKernel());
  }

  join(variable: tf.Variable, init: JoinInit): number {
    // The parameter is only a key until the variable's first step points it at the values.
    const key = new Float32Array(variable.size);
    const index = this.core.addParam(key, init as { override?: Partial<O>; state?: JoinInit['state'] });
    this.keys[index] = key;
    return index;
  }

  step(items: StepItem[]): void {
    const stats: CpuStepStats = { inPlace: 0, copies: 0, copyBytes: 0 };
    const stepped = tf.engine().backendName === 'wasm' ? this.onWasmHeap(items, stats) : this.onCopies(items, stats);
    const grads: (Float32Array | null)[] = new Array(this.core.params.length).fill(null);
    items.forEach(({ index }, k) => {
      this.core.replaceParam(index, stepped.values[k]);
      grads[index] = stepped.grads[k];
    });
    try {
      this.core.stepSync(grads);
    } finally {
      // Also after a kernel error: the variables stepped so far read their new values.
      stepped.rotate?.();
      tf.tidy(() => items.forEach(({ variable }, k) => stepped.assign[k] && variable.assign(stepped.assign[k]!)));
      tf.dispose(stepped.assign.filter((t): t is tf.Tensor => t !== null));
      for (const { index } of items) this.core.replaceParam(index, this.keys[index]);
    }
    this.lastStep = stats;
  }

  /** wasm: views into tfjs's heap; in place where the variable alone holds its memory. */
  private onWasmHeap(items: StepItem[], stats: CpuStepStats): { values: Float32Array[]; grads: Float32Array[]; assign: (tf.Tensor | null)[]; rotate: () => void } {
    const b = tf.engine().backend as unknown as WasmBackend;
    const read = new Set(items.map((i) => i.grad.dataId));
    const own = items.map(({ variable }) => b.refCount(variable.dataId) === 1 && !read.has(variable.dataId));
    // New heap memory first: an allocation may grow the heap, which invalidates earlier views.
    const outs = items.map(({ variable }, k) => (own[k] ? null : b.makeOutput([...variable.shape], 'float32')));
    const assign = outs.map((o) => (o ? tf.engine().makeTensorFromTensorInfo(o, b as unknown as tf.KernelBackend) : null));
    const values = items.map(({ variable }, k) => {
      const current = b.typedArrayFromHeap(variable);
      if (own[k]) {
        stats.inPlace++;
        return current;
      }
      const out = b.typedArrayFromHeap(outs[k]!);
      out.set(current);
      stats.copies++;
      stats.copyBytes += current.byteLength;
      return out;
    });
    // After the step: the memory stepped in place changes hands to a new tensor id; the old id
    // is then disposed with the variable's reference without freeing it (_free(0) is a no-op).
    const rotate = () =>
      items.forEach(({ variable }, k) => {
        if (!own[k]) return;
        const old = b.dataIdMap.get(variable.dataId)!;
        const info = b.makeOutput([...variable.shape], 'float32', old.memoryOffset);
        old.memoryOffset = 0;
        assign[k] = tf.engine().makeTensorFromTensorInfo(info, b as unknown as tf.KernelBackend);
      });
    return { values, grads: items.map(({ grad }) => b.typedArrayFromHeap(grad)), assign, rotate };
  }

  /** cpu, webgl and others: step a copy of the values, handed to the backend by `assign`. */
  private onCopies(items: StepItem[], stats: CpuStepStats): { values: Float32Array[]; grads: Float32Array[]; assign: (tf.Tensor | null)[]; rotate?: () => void } {
    // dataSync() hands out the backend's own array (cpu) or the CPU copy it caches (webgl,
    // webgpu), which callers may hold: step a copy of it.
    const values = items.map(({ variable }) => {
      const v = (variable.dataSync() as Float32Array).slice();
      stats.copies++;
      stats.copyBytes += v.byteLength;
      return v;
    });
    const grads = items.map(({ grad }) => grad.dataSync() as Float32Array);
    const assign = items.map(({ variable }, k) => tf.tensor(values[k], variable.shape, 'float32'));
    return { values, grads, assign };
  }

  stateDict(): Promise<StateDict> {
    return Promise.resolve(this.core.stateDict());
  }

  stateBytes(index: number): number {
    return this.core.stateBytes(index);
  }

  stepCount(index: number): number {
    return this.core.stepCount(index);
  }

  release(index: number): void {
    this.core.releaseState(index);
  }

  setOptions(options: Partial<O>): void {
    this.core.setOptions(options);
  }

  unusableHere(): string | null {
    return null;
  }

  dispose(): void {}
}
