/**
 * One variable's optimizer on the CPU, for the tfjs backends whose data can be read
 * synchronously: `cpu`, `wasm` and `webgl` (and `webgpu` in a browser, slowly). A bitopt core
 * optimizer over the variable's float32 values steps it with a synchronous CPU kernel.
 *
 * Copies per step (n = the variable's elements). tfjs tensors are immutable and a caller may
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
import type { CpuKernel } from '../kernels/types.js';
import type { BaseOptions, Optimizer } from '../optim/optimizer.js';
import type { StateDict } from '../optim/statedict.js';
import type { CoreClass, VariableStepper } from './stepper.js';

let sharedKernel: CpuKernel | undefined;

/** A kernel that answers synchronously: WebAssembly SIMD on one thread where available. */
export function syncCpuKernel(): CpuKernel {
  sharedKernel ??= wasmKernelsSupported() ? createWasmKernel({ threads: 1 }) : createReferenceKernel();
  return sharedKernel;
}

export class CpuStepper<O extends BaseOptions> implements VariableStepper {
  readonly kind = 'cpu';
  private readonly core: Optimizer<O>;
  /** The array the core stepped last (the constructor's is only a key until the first step). */
  private storage: Float32Array;

  constructor(cls: CoreClass<O>, options: O, override: Partial<O> | undefined, variable: tf.Variable) {
    this.storage = variable.dataSync() as Float32Array;
    this.core = new cls([this.storage], options);
    this.core.setKernel(syncCpuKernel());
    if (override) this.core.overrideConfig(this.storage, override);
  }

  step(variable: tf.Variable, grad: tf.Tensor): void {
    const g = grad.dataSync() as Float32Array;
    const values = variable.dataSync() as Float32Array;
    // cpu and webgl hand out arrays the backend (and callers) keep: step a copy. wasm's is fresh.
    this.storage = tf.engine().backendName === 'wasm' ? values : values.slice();
    this.core.replaceParam(0, this.storage);
    this.core.stepSync([g]);
    tf.tidy(() => variable.assign(tf.tensor(this.storage, variable.shape, 'float32')));
  }

  stateDict(): Promise<StateDict> {
    return Promise.resolve(this.core.stateDict());
  }

  loadStateDict(dict: StateDict): void {
    this.core.loadStateDict(dict);
  }

  stateBytes(): number {
    return this.core.stateBytes();
  }

  stepCount(): number {
    return this.core.stepCount(0);
  }

  setOptions(options: Partial<O>): void {
    this.core.setOptions(options);
  }

  dispose(): void {}
}
