/**
 * The variables' optimizer on the tfjs `webgpu` backend: one bitopt WebGPU engine
 * (src/kernels/webgpu) for every variable of the tfjs optimizer, on the backend's own GPUDevice
 * and buffers; nothing is read back to the CPU per step (only getWeights reads the state back).
 *
 * Per `applyGradients`, all on tfjs's command encoder, after the work tfjs has recorded so far:
 * 1. each stepped variable's buffer is copied into its parameter buffer here (the WGSL
 *    optimizer is bound to a fixed buffer, and a variable's buffer changes with every assign);
 * 2. a gradient's buffer is used as is when it holds whole vec4s (elements a multiple of 4),
 *    else copied into a padded buffer;
 * 3. one compute pass updates every parameter buffer and its state;
 * 4. the encoder is submitted: ONE submit for the whole step (tfjs's pending work included);
 * 5. per variable, `tf.tensor({ buffer })` copies the result into a new tfjs buffer (tfjs
 *    submits that copy itself), which the variable is assigned (a tfjs tensor's buffer is never
 *    written in place: other tensors may share it).
 * GPU memory besides the state: the parameter buffers (4 B/parameter), and a gradient buffer
 * for sizes that are not a multiple of 4.
 */
/// <reference types="@webgpu/types" />
import * as tf from '@tensorflow/tfjs-core';
import { createGpuTensor, gpuTensorBytes, type GpuTensor } from '../kernels/webgpu/device.js';
import { createWebgpuOptimizer, type WebgpuOptimizer } from '../kernels/webgpu/optimizer.js';
import type { BaseOptions } from '../optim/optimizer.js';
import type { StateDict } from '../optim/statedict.js';
import type { CoreClass, JoinInit, StepItem, TfjsEngine } from './engine.js';

/** The parts of tfjs-backend-webgpu's WebGPUBackend this path uses (4.x). */
interface WebgpuBackend {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  tensorMap: { get(dataId: object): { resource?: GPUBuffer | null } | undefined };
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

function webgpuBackend(): WebgpuBackend | null {
  if (tf.engine().backendName !== 'webgpu') return null;
  const b = tf.engine().backend as unknown as Partial<WebgpuBackend>;
  const ok = b.device && b.tensorMap && b.uploadToGPU && b.ensureCommandEncoderReady && b.endComputePassEncoder && b.submitQueue;
  return ok ? (b as WebgpuBackend) : null;
}

/** The WebGPU engine when the current backend is tfjs's webgpu backend, else null. */
export function createWebgpuEngine<O extends BaseOptions>(cls: CoreClass<O>, options: O): TfjsEngine | null {
  const backend = webgpuBackend();
  return backend ? new WebgpuEngine(backend, cls, options) : null;
}

interface Variable {
  param: GpuTensor;
  gradPad: GpuTensor | null;
}

class WebgpuEngine<O extends BaseOptions> implements TfjsEngine {
  readonly kind = 'webgpu';
  private readonly opt: WebgpuOptimizer<O>;
  private readonly vars: Variable[] = [];
  /** An error WebGPU reported for an earlier step (steps are not awaited). */
  private failure: Error | null = null;

  constructor(
    private readonly backend: WebgpuBackend,
    cls: CoreClass<O>,
    options: O,
  ) {
    // One group, no parameters yet: variables join as they first appear.
    this.opt = createWebgpuOptimizer(backend.device, cls, [{ params: [] }], options);
  }

  join(variable: tf.Variable, init: JoinInit): number {
    const param = createGpuTensor(this.backend.device, variable.size);
    try {
      const index = this.opt.addParam(param, init as { override?: Partial<O>; state?: JoinInit['state'] });
      this.vars[index] = { param, gradPad: null };
      return index;
    } catch (e) {
      param.buffer.destroy();
      throw e;
    }
  }

  private bufferOf(t: tf.Tensor): GPUBuffer {
    this.backend.uploadToGPU(t.dataId);
    const buffer = this.backend.tensorMap.get(t.dataId)?.resource;
    if (!buffer) throw new Error(`webgpu backend: tensor '${(t as tf.Variable).name ?? t.id}' has no GPU buffer`);
    return buffer;
  }

  step(items: StepItem[]): void {
    this.throwFailure();
    const b = this.backend;
    const grads: (GpuTensor | null)[] = new Array(this.vars.length).fill(null);
    const copies: { from: GPUBuffer; to: GPUBuffer; bytes: number }[] = [];
    for (const { index, variable, grad } of items) {
      const v = this.vars[index];
      const n = variable.size;
      copies.push({ from: this.bufferOf(variable), to: v.param.buffer, bytes: n * 4 });
      let g: GpuTensor = { buffer: this.bufferOf(grad), length: n };
      if (g.buffer.size < gpuTensorBytes(n)) {
        v.gradPad ??= createGpuTensor(b.device, n);
        copies.push({ from: g.buffer, to: v.gradPad.buffer, bytes: n * 4 });
        g = v.gradPad;
      }
      grads[index] = g;
    }
    // Copies and the compute pass on tfjs's encoder, then one submit: runs after everything tfjs has recorded.
    b.ensureCommandEncoderReady();
    b.endComputePassEncoder();
    const encoder = b.commandEncoder!;
    for (const c of copies) if (c.bytes > 0) encoder.copyBufferToBuffer(c.from, 0, c.to, 0, c.bytes);
    this.opt.step(grads, { encoder, submit: () => b.submitQueue() }).catch((e: Error) => (this.failure ??= e));
    tf.tidy(() => {
      for (const { index, variable } of items) variable.assign(tf.tensor({ buffer: this.vars[index].param.buffer, zeroCopy: false }, variable.shape, 'float32'));
    });
  }

  private throwFailure(): void {
    if (this.failure) throw new Error(`webgpu optimizer step failed: ${this.failure.message}`);
  }

  async stateDict(): Promise<StateDict> {
    this.throwFailure();
    return this.opt.stateDictAsync();
  }

  stateBytes(): number {
    return this.opt.stateBytes();
  }

  stepCount(index: number): number {
    return this.opt.stepCount(index);
  }

  setOptions(options: Partial<O>): void {
    this.opt.setOptions(options);
  }

  unusableHere(): string | null {
    if (tf.engine().backend !== (this.backend as unknown)) {
      return `its variables were stepped on the webgpu backend and the backend is now '${tf.engine().backendName}' (getWeights, then setWeights, moves the state to this backend)`;
    }
    return null;
  }

  dispose(): void {
    this.opt.destroy();
    for (const v of this.vars) {
      v.param.buffer.destroy();
      v.gradPad?.buffer.destroy();
    }
  }
}
