/**
 * The variables' optimizer on the tfjs `webgpu` backend: one bitopt WebGPU engine
 * (src/kernels/webgpu) for every variable of the tfjs optimizer, on the backend's own GPUDevice,
 * stepping each variable's own GPU buffer. It keeps no buffer of its own besides the optimizer
 * state, and nothing is read back to the CPU per step (only getWeights reads the state back).
 *
 * Per `applyGradients`, all on tfjs's command encoder, after the work tfjs has recorded so far:
 * 1. a variable whose storage only it holds (backend refCount 1, a tfjs-owned buffer of whole
 *    vec4s, not its own gradient) is stepped in place: no copy. Otherwise (another tensor shares
 *    it, e.g. a `tf.clone`, or the variable's initial value is still held) its values are copied
 *    into a new tfjs buffer that becomes the variable's (1 GPU copy; the other holders keep the
 *    old values);
 * 2. a gradient's buffer is bound as is; sizes that are not a multiple of 4 (the kernels read
 *    whole vec4s) go through padded buffers from tfjs's pool, released after the submit;
 * 3. one compute pass updates every variable and its state, and the encoder is submitted: ONE
 *    submit for the whole step (tfjs's pending work included);
 * 4. each variable gets a new tensor whose buffer is the one just updated (CPU bookkeeping
 *    only): so a CPU copy tfjs cached from an earlier read, or an asynchronous read still in
 *    flight, belongs to the old tensor and can never be taken for the new values.
 */
/// <reference types="@webgpu/types" />
import * as tf from '@tensorflow/tfjs-core';
import { gpuTensorBytes, type GpuTensor } from '../kernels/webgpu/device.js';
import { MovableParams } from '../kernels/webgpu/movable-params.js';
import { createWebgpuOptimizer, type WebgpuOptimizer } from '../kernels/webgpu/optimizer.js';
import type { BaseOptions } from '../optim/optimizer.js';
import type { StateDict } from '../optim/statedict.js';
import type { CoreClass, JoinInit, StepItem, TfjsEngine } from './engine.js';

/** A tensor's entry in tfjs-backend-webgpu's tensorMap (4.x). */
interface TensorData {
  resource?: GPUBuffer | GPUTexture | null;
  refCount: number;
  external?: boolean;
}

/** The parts of tfjs-backend-webgpu's WebGPUBackend this path uses (4.x). */
interface WebgpuBackend {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  tensorMap: { get(dataId: object): TensorData | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer; releaseBuffer(buffer: GPUBuffer): void };
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: 'float32'): tf.TensorInfo;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

function webgpuBackend(): WebgpuBackend | null {
  if (tf.engine().backendName !== 'webgpu') return null;
  const b = tf.engine().backend as unknown as Partial<WebgpuBackend>;
  const ok = b.device && b.tensorMap && b.bufferManager && b.uploadToGPU && b.makeTensorInfo && b.ensureCommandEncoderReady && b.endComputePassEncoder && b.submitQueue;
  return ok ? (b as WebgpuBackend) : null;
}

/** The WebGPU engine when the current backend is tfjs's webgpu backend, else null. */
export function createWebgpuEngine<O extends BaseOptions>(cls: CoreClass<O>, options: O): TfjsEngine | null {
  const backend = webgpuBackend();
  return backend ? new WebgpuEngine(backend, cls, options) : null;
}

/** tfjs's own usage for tensor buffers: STORAGE | COPY_SRC | COPY_DST (numbers: GPUBufferUsage may not exist when this module loads). */
const STORAGE = 0x80;
const TENSOR_USAGE = STORAGE | 0x04 | 0x08;

interface Copy {
  from: GPUBuffer;
  to: GPUBuffer;
  bytes: number;
}

/** How one variable is stepped this time. */
interface Plan {
  item: StepItem;
  /** The buffer the variable reads after the step: its own (in place) or a new one. */
  dest: GPUBuffer;
  /** The buffer the kernel updates: `dest`, or a padded one copied into `dest` afterwards. */
  kernel: GPUBuffer;
  grad: GpuTensor;
}

/** Per-step copy counts, for tests and the memory notes (docs/tfjs.md "Memory"). */
export interface WebgpuStepStats {
  inPlace: number;
  moved: number;
  padded: number;
  copies: number;
  copyBytes: number;
}

class WebgpuEngine<O extends BaseOptions> implements TfjsEngine {
  readonly kind = 'webgpu';
  private readonly opt: WebgpuOptimizer<O>;
  private readonly params: GpuTensor[] = [];
  private readonly movable: MovableParams;
  /** An error WebGPU reported for an earlier step (steps are not awaited). */
  private failure: Error | null = null;
  /** What the last step did. */
  lastStep: WebgpuStepStats = { inPlace: 0, moved: 0, padded: 0, copies: 0, copyBytes: 0 };

  constructor(
    private readonly backend: WebgpuBackend,
    cls: CoreClass<O>,
    options: O,
  ) {
    // One group, no parameters yet: variables join as they first appear.
    this.opt = createWebgpuOptimizer(backend.device, cls, [{ params: [] }], options);
    this.movable = new MovableParams(backend.device);
  }

  join(variable: tf.Variable, init: JoinInit): number {
    // The optimizer checks a parameter's buffer when it joins; each step points it at that
    // step's buffer (MovableParams). Until then it names the variable's own buffer, or for a
    // size that is not whole vec4s a pooled one of the right size, handed straight back.
    const n = variable.size;
    const own = this.data(variable).buffer;
    const pool = this.backend.bufferManager;
    let buffer = own;
    if (own.size < gpuTensorBytes(n)) {
      buffer = pool.acquireBuffer(gpuTensorBytes(n), TENSOR_USAGE);
      pool.releaseBuffer(buffer);
    }
    const param: GpuTensor = { buffer, length: n };
    const index = this.opt.addParam(param, init as { override?: Partial<O>; state?: JoinInit['state'] });
    this.params[index] = param;
    return index;
  }

  private data(t: tf.Tensor): { data: TensorData; buffer: GPUBuffer } {
    this.backend.uploadToGPU(t.dataId);
    const data = this.backend.tensorMap.get(t.dataId);
    const r = data?.resource;
    if (!data || !r || typeof (r as GPUBuffer).getMappedRange !== 'function') {
      throw new Error(`webgpu backend: tensor '${(t as tf.Variable).name ?? t.id}' has no GPU buffer (a texture-backed tensor cannot be stepped)`);
    }
    return { data, buffer: r as GPUBuffer };
  }

  step(items: StepItem[]): void {
    this.throwFailure();
    // An error that arrived for an earlier step fails this call before anything is recorded
    // (else the optimizer's step would reject asynchronously and this step's gradients be dropped).
    this.opt.throwIfFailed();
    const b = this.backend;
    const pool = b.bufferManager;
    // Everything is looked up before anything is recorded, so a throw leaves tfjs untouched.
    // An empty variable has nothing to step (the optimizer skips it too).
    const looked = items.filter((i) => i.variable.size > 0).map((item) => ({ item, v: this.data(item.variable), g: this.data(item.grad).buffer }));
    // A buffer some gradient of this step reads is never written in place (it must be read as it was).
    const read = new Set(looked.map((l) => l.g));
    b.ensureCommandEncoderReady();
    b.endComputePassEncoder();
    const encoder = b.commandEncoder!;
    const before: Copy[] = [];
    const after: Copy[] = [];
    const pads: GPUBuffer[] = [];
    const stats: WebgpuStepStats = { inPlace: 0, moved: 0, padded: 0, copies: 0, copyBytes: 0 };
    const padded = (n: number): GPUBuffer => {
      const p = pool.acquireBuffer(gpuTensorBytes(n), TENSOR_USAGE);
      pads.push(p);
      return p;
    };
    const plans: Plan[] = looked.map(({ item, v, g }) => {
      const n = item.variable.size;
      const bytes = n * 4;
      const own = v.data.refCount === 1 && !v.data.external && !read.has(v.buffer) && (v.buffer.usage & STORAGE) !== 0;
      const dest = own ? v.buffer : pool.acquireBuffer(bytes, TENSOR_USAGE);
      if (own) stats.inPlace++;
      else stats.moved++;
      const fits = dest.size >= gpuTensorBytes(n);
      const kernel = fits ? dest : padded(n);
      if (!fits) stats.padded++;
      if (kernel !== v.buffer) before.push({ from: v.buffer, to: kernel, bytes });
      if (kernel !== dest) after.push({ from: kernel, to: dest, bytes });
      let grad: GpuTensor = { buffer: g, length: n };
      if (g.size < gpuTensorBytes(n)) {
        grad = { buffer: padded(n), length: n };
        before.push({ from: g, to: grad.buffer, bytes });
      }
      return { item, dest, kernel, grad };
    });
    const record = (copies: Copy[]) => {
      for (const c of copies) {
        if (c.bytes === 0) continue;
        encoder.copyBufferToBuffer(c.from, 0, c.to, 0, c.bytes);
        stats.copies++;
        stats.copyBytes += c.bytes;
      }
    };
    record(before);
    const grads: (GpuTensor | null)[] = new Array(this.params.length).fill(null);
    const { grads: bound, scratch } = this.movable.point(
      plans.map((p) => ({ param: this.params[p.item.index], buffer: p.kernel, grad: p.grad })),
      encoder,
    );
    plans.forEach((p, i) => (grads[p.item.index] = bound[i]));
    for (const p of plans) this.opt.rebind(this.params[p.item.index]); // the moves are ours: the optimizer refuses any other
    let submitted = false;
    const submit = () => {
      record(after);
      b.submitQueue();
      submitted = true;
    };
    // The compute pass goes on tfjs's encoder: it runs after everything tfjs has recorded.
    this.opt.step(grads, { encoder, submit }).catch((e: Error) => (this.failure ??= e));
    if (!submitted) {
      // The step was refused before recording anything: the copies still give each variable its values.
      b.ensureCommandEncoderReady();
      submit();
    }
    for (const p of pads) pool.releaseBuffer(p);
    for (const s of scratch) s.destroy();
    // Each variable reads the updated buffer through a new tensor (module comment, point 4).
    tf.tidy(() => {
      for (const { item, dest } of plans) {
        const info = b.makeTensorInfo([...item.variable.shape], 'float32');
        b.tensorMap.get(info.dataId)!.resource = dest;
        const old = b.tensorMap.get(item.variable.dataId)!;
        if (old.resource === dest) old.resource = null; // moved to the new tensor, not released with the old one
        item.variable.assign(tf.engine().makeTensorFromTensorInfo(info, b as unknown as tf.KernelBackend));
      }
    });
    this.lastStep = stats;
  }

  /** Reports a failed earlier step once (the optimizer took its step counts back), then carries on. */
  private throwFailure(): void {
    const e = this.failure;
    if (!e) return;
    this.failure = null;
    throw new Error(`webgpu optimizer step failed: ${e.message}`, { cause: e });
  }

  async stateDict(): Promise<StateDict> {
    this.throwFailure();
    return this.opt.stateDictAsync();
  }

  stateBytes(index: number): number {
    return this.opt.stateBytes(index);
  }

  stepCount(index: number): number {
    return this.opt.stepCount(index);
  }

  release(index: number): void {
    this.opt.releaseState(index);
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
    // The optimizer's state only: the variables' buffers belong to tfjs.
    this.opt.destroy();
  }
}
