/**
 * One variable's optimizer on the tfjs `webgpu` backend: bitopt's WGSL kernels
 * (src/kernels/webgpu) run on the backend's own GPUDevice and buffers; nothing is read back to
 * the CPU per step (only getWeights reads the state back).
 *
 * Per step, all on the GPU queue, in order after the work tfjs has recorded so far:
 * 1. the variable's buffer is copied into this stepper's parameter buffer (the WGSL optimizer
 *    is bound to a fixed buffer, and a variable's buffer changes with every assign);
 * 2. the gradient's buffer is used as is when it holds whole vec4s (elements a multiple of 4),
 *    else copied into a padded buffer;
 * 3. one fused compute pass updates the parameter buffer and the 8-bit state;
 * 4. `tf.tensor({ buffer })` copies the result into a new tfjs buffer, which the variable is
 *    assigned (a tfjs tensor's buffer is never written in place: other tensors may share it).
 * GPU memory besides the state: the parameter buffer (4 B/parameter), and a gradient buffer
 * for sizes that are not a multiple of 4.
 */
/// <reference types="@webgpu/types" />
import * as tf from '@tensorflow/tfjs-core';
import { createGpuTensor, gpuTensorBytes, type GpuTensor } from '../kernels/webgpu/device.js';
import { createWebgpuOptimizer, type WebgpuOptimizer } from '../kernels/webgpu/optimizer.js';
import type { BaseOptions } from '../optim/optimizer.js';
import type { StateDict } from '../optim/statedict.js';
import type { CoreClass, VariableStepper } from './stepper.js';

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

/** The WebGPU stepper when the current backend is tfjs's webgpu backend, else null. */
export function createWebgpuStepper<O extends BaseOptions>(cls: CoreClass<O>, options: O, override: Partial<O> | undefined, variable: tf.Variable): VariableStepper | null {
  const backend = webgpuBackend();
  return backend ? new WebgpuStepper(backend, cls, options, override, variable) : null;
}

class WebgpuStepper<O extends BaseOptions> implements VariableStepper {
  readonly kind = 'webgpu';
  private readonly param: GpuTensor;
  private gradPad: GpuTensor | null = null;
  private readonly opt: WebgpuOptimizer<O>;
  /** An error WebGPU reported for an earlier step (steps are not awaited). */
  private failure: Error | null = null;

  constructor(
    private readonly backend: WebgpuBackend,
    cls: CoreClass<O>,
    options: O,
    override: Partial<O> | undefined,
    variable: tf.Variable,
  ) {
    this.param = createGpuTensor(backend.device, variable.size);
    this.opt = createWebgpuOptimizer(backend.device, cls, [this.param], options);
    if (override) this.opt.overrideConfig(this.param, override);
  }

  private bufferOf(t: tf.Tensor): GPUBuffer {
    this.backend.uploadToGPU(t.dataId);
    const buffer = this.backend.tensorMap.get(t.dataId)?.resource;
    if (!buffer) throw new Error(`webgpu backend: tensor '${(t as tf.Variable).name ?? t.id}' has no GPU buffer`);
    return buffer;
  }

  step(variable: tf.Variable, grad: tf.Tensor): void {
    this.throwFailure();
    const n = variable.size;
    const b = this.backend;
    const src = this.bufferOf(variable);
    let g: GpuTensor = { buffer: this.bufferOf(grad), length: n };
    if (g.buffer.size < gpuTensorBytes(n)) {
      this.gradPad ??= createGpuTensor(b.device, n);
      g = this.gradPad;
    }
    // Copies on tfjs's encoder, then submit: runs after everything tfjs has recorded.
    b.ensureCommandEncoderReady();
    b.endComputePassEncoder();
    b.commandEncoder!.copyBufferToBuffer(src, 0, this.param.buffer, 0, n * 4);
    if (g === this.gradPad) b.commandEncoder!.copyBufferToBuffer(this.bufferOf(grad), 0, g.buffer, 0, n * 4);
    b.submitQueue();
    this.opt.step([g]).catch((e: Error) => (this.failure ??= e));
    tf.tidy(() => variable.assign(tf.tensor({ buffer: this.param.buffer, zeroCopy: false }, variable.shape, 'float32')));
  }

  private throwFailure(): void {
    if (this.failure) throw new Error(`webgpu optimizer step failed: ${this.failure.message}`);
  }

  async stateDict(): Promise<StateDict> {
    this.throwFailure();
    return this.opt.stateDictAsync();
  }

  loadStateDict(dict: StateDict): void {
    this.opt.loadStateDict(dict);
  }

  stateBytes(): number {
    return this.opt.stateBytes();
  }

  stepCount(): number {
    return this.opt.stepCount(0);
  }

  setOptions(options: Partial<O>): void {
    this.opt.setOptions(options);
  }

  dispose(): void {
    this.opt.destroy();
    this.param.buffer.destroy();
    this.gradPad?.buffer.destroy();
  }
}
