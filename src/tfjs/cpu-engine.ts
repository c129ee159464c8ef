/**
 * The variables' optimizer on the CPU, for the tfjs backends whose data can be read
 * synchronously: `cpu`, `wasm` and `webgl` (and `webgpu` in a browser, slowly). One bitopt core
 * optimizer holds every variable of the tfjs optimizer (a variable joins at its first step) and
 * steps them with a synchronous CPU kernel, one `stepSync` per `applyGradients`.
 *
 * Copies per step and variable (n = its elements). tfjs tensors are immutable and a caller may
 * hold an array from `dataSync()` (on the cpu backend, the backend's own storage), so a step
 * never writes into a variable's current storage: it steps a copy and assigns it.
 * - cpu: `grad.dataSync()` and `variable.dataSync()` return the backend's arrays (no copy);
 *   one copy of the values is stepped, and `assign(tf.tensor(copy))` hands that array to the
 *   backend without copying again. The WebAssembly kernel also stages the values and the
 *   gradient into its own memory and the values back (3 more copies inside the kernel); the
 *   reference kernel works in place.
 * - wasm: `variable.dataSync()` and `grad.dataSync()` copy out of the wasm heap (2 copies),
 *   the core steps the values copy, and `assign(tf.tensor(...))` copies it back in (1 copy).
 * - webgl: two GPU→CPU readbacks (variable, gradient) and one upload per step.
 * Between steps the core keeps a reference to the last stepped array (on cpu it is the
 * variable's storage, so nothing extra; on wasm/webgl a 4 B/parameter staging copy).
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

export class CpuEngine<O extends BaseOptions> implements TfjsEngine {
  readonly kind = 'cpu';
  private readonly core: Optimizer<O>;

  constructor(cls: CoreClass<O>, options: O) {
    // One group, no parameters yet: variables join as they first appear.
    this.core = new cls([{ params: [] }] as unknown as Params<O>, options);
    this.core.setKernel(syncCpuKernel());
  }

  join(variable: tf.Variable, init: JoinInit): number {
    // The parameter is only a key until the variable's first step replaces it with the array it
    // steps: a new view of the current values (no copy; never written).
    const key = (variable.dataSync() as Float32Array).subarray(0);
    return this.core.addParam(key, init as { override?: Partial<O>; state?: JoinInit['state'] });
  }

  step(items: StepItem[]): void {
    const grads: (Float32Array | null)[] = new Array(this.core.params.length).fill(null);
    // cpu and webgl hand out arrays the backend (and callers) keep: step a copy. wasm's is fresh.
    const fresh = tf.engine().backendName === 'wasm';
    const stepped = items.map(({ index, variable, grad }) => {
      const values = variable.dataSync() as Float32Array;
      const storage = fresh ? values : values.slice();
      this.core.replaceParam(index, storage);
      grads[index] = grad.dataSync() as Float32Array;
      return { variable, storage };
    });
    this.core.stepSync(grads);
    tf.tidy(() => {
      for (const { variable, storage } of stepped) variable.assign(tf.tensor(storage, variable.shape, 'float32'));
    });
  }

  stateDict(): Promise<StateDict> {
    return Promise.resolve(this.core.stateDict());
  }

  stateBytes(): number {
    return this.core.stateBytes();
  }

  stepCount(index: number): number {
    return this.core.stepCount(index);
  }

  setOptions(options: Partial<O>): void {
    this.core.setOptions(options);
  }

  unusableHere(): string | null {
    return null;
  }

  dispose(): void {}
}
