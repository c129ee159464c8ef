/**
 * A GPU-memory wall for the capacity run on tfjs's webgpu backend, counted at the device.
 * WebGPU reports no device memory size and no memory in use, so the wall is a budget on the
 * bytes of live GPUBuffers: the guard wraps the GPUDevice's `createBuffer` and each buffer's
 * `destroy`, so it sees tfjs's buffers and bitopt's alike (bitopt's adapter on webgpu allocates
 * on tfjs's own device). A buffer that would take the live bytes past the budget throws an
 * OutOfMemoryError, after tfjs's free-buffer pool (buffers of freed tensors that tfjs keeps for
 * reuse instead of destroying) has been released once, together with the tensors tfjs holds
 * back until its recorded work is submitted; a buffer over the device's own binding
 * limit throws one as well, since tfjs could not use it.
 */
/// <reference types="@webgpu/types" />
import { tf } from '../tf.js';
import { OutOfMemoryError } from './heap.js';

/** The fields of tfjs-backend-webgpu 4.x's BufferManager (dist/buffer_manager.js) the guard reads and flushes. */
interface TfjsBufferManager {
  freeBuffers: Map<string, GPUBuffer[]>;
  numFreeBuffers: number;
  numBytesUsed: number;
  numBytesAllocated: number;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GPUBuffer;
}

interface TfjsWebgpuBackend {
  device: GPUDevice;
  bufferManager: TfjsBufferManager;
  /** The encoder of work recorded and not yet submitted (null when none). */
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  /** Submits the recorded work, then releases the tensors disposed meanwhile into the pool. */
  submitQueue(): void;
}

/** The GPU memory at one moment: every live buffer, split by who made it. */
export interface GpuBytes {
  /** All live GPUBuffers (created and not destroyed): what the budget counts. */
  live: number;
  /** Of `live`, buffers tfjs's buffer manager created (tensors, uniforms, staging, its pool). */
  tfjs: number;
  /** Of `tfjs`, buffers in tfjs's free pool (freed tensors' buffers kept for reuse): tfjs's live bytes less its `numBytesUsed`. */
  tfjsPool: number;
  /** Of `live`, buffers made outside tfjs's buffer manager: bitopt's (state, parameters, tables, uniforms). */
  bitopt: number;
}

/** What the GPU guard has seen so far. */
export interface GpuStats {
  /** The budget on live buffer bytes. */
  budgetBytes: number;
  /** The device's largest storage binding (min of maxBufferSize and maxStorageBufferBindingSize). */
  maxBindingBytes: number;
  now: GpuBytes;
  /**
   * The split at the moment the bytes in use (`live − tfjsPool`: what a flushed pool leaves,
   * so what the model needs) were highest.
   */
  peak: GpuBytes;
  /** The most `live` (pool included) has been. */
  peakLiveBytes: number;
  /** Times tfjs's pool was released to make room, and the bytes that gave back. */
  poolFlushes: number;
  poolFlushedBytes: number;
  buffersCreated: number;
}

/** The installed guard: its counts, and the pool flush it uses (also callable between steps). */
export interface GpuGuard {
  stats(): GpuStats;
  /** Submits tfjs's recorded work (which frees the tensors disposed meanwhile), then destroys every buffer in its free pool; returns the bytes released. */
  flushPool(): number;
  /**
   * Runs `fn` with the submit of a flush turned off: bitopt's adapter records its step into
   * tfjs's command encoder and holds it across its own allocations, which a submit would finish
   * under it. During `fn` a flush releases the pool only.
   */
  withoutSubmit<T>(fn: () => T): T;
}

/**
 * Installs the guard on the current tfjs backend, which must be 'webgpu' (tfjs-backend-webgpu
 * 4.x). Buffers that already exist (none, right after the backend starts) are not counted.
 */
export function guardGpuMemory(budgetBytes: number): GpuGuard {
  if (tf.getBackend() !== 'webgpu') throw new Error(`the GPU memory guard needs the tfjs webgpu backend (the current one is ${tf.getBackend()})`);
  if (!(Number.isFinite(budgetBytes) && budgetBytes > 0)) throw new Error(`the GPU memory budget must be a positive number of bytes, got ${budgetBytes}`);
  const backend = tf.backend() as unknown as TfjsWebgpuBackend;
  const device = backend.device;
  const manager = backend.bufferManager;
  if (!device || typeof device.createBuffer !== 'function' || !manager || !(manager.freeBuffers instanceof Map) || typeof manager.acquireBuffer !== 'function' || typeof backend.submitQueue !== 'function' || typeof backend.endComputePassEncoder !== 'function') {
    throw new Error('tfjs webgpu backend: no device or buffer manager where tfjs-backend-webgpu 4.x has them (unsupported version)');
  }
  const maxBindingBytes = Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize);
  const now = { live: 0, tfjs: 0, bitopt: 0 };
  let peak: GpuBytes = { live: 0, tfjs: 0, tfjsPool: 0, bitopt: 0 };
  let peakLive = 0;
  // Every tfjs buffer that exists is in use (numBytesUsed) or in the pool.
  const current = (): GpuBytes => ({ ...now, tfjsPool: now.tfjs - manager.numBytesUsed });
  const notePeak = () => {
    const c = current();
    if (c.live - c.tfjsPool > peak.live - peak.tfjsPool) peak = c;
    if (c.live > peakLive) peakLive = c.live;
  };
  let poolFlushes = 0;
  let poolFlushedBytes = 0;
  let buffersCreated = 0;
  // True while tfjs's buffer manager is the caller of createBuffer.
  let inTfjs = false;
  let submitHeld = false;

  const flushPool = (): number => {
    // tfjs keeps a disposed tensor's buffer out of the pool while recorded work may still use it
    // (up to 15 dispatches); submitting it first lets those buffers go too. The pass in progress
    // is ended first, as tfjs itself does before a submit; the next dispatch opens a new one.
    // Only from tfjs's own buffer manager: tfjs opens a new encoder after each acquire.
    if (inTfjs && !submitHeld && backend.commandEncoder) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
    let released = 0;
    let count = 0;
    for (const list of manager.freeBuffers.values()) {
      for (const b of list) {
        released += b.size;
        count++;
        b.destroy();
      }
      // Emptied in place: tfjs's releaseBuffer stops pooling (and counting) once the map is empty.
      list.length = 0;
    }
    manager.numFreeBuffers -= count;
    manager.numBytesAllocated -= released;
    return released;
  };

  const acquire = manager.acquireBuffer.bind(manager);
  manager.acquireBuffer = (size, usage, mappedAtCreation, reuse) => {
    inTfjs = true;
    try {
      const b = acquire(size, usage, mappedAtCreation, reuse);
      notePeak();
      return b;
    } finally {
      inTfjs = false;
    }
  };

  const create = device.createBuffer.bind(device);
  device.createBuffer = (desc: GPUBufferDescriptor): GPUBuffer => {
    const size = desc.size;
    const who = inTfjs ? 'tfjs' : 'bitopt';
    if ((desc.usage & GPUBufferUsage.STORAGE) !== 0 && size > maxBindingBytes) {
      throw new OutOfMemoryError(`GPU out of memory: a ${size}-byte ${who} storage buffer exceeds the device's largest binding (${maxBindingBytes} bytes, maxStorageBufferBindingSize / maxBufferSize)`, 'gpu-buffer-limit');
    }
    if (now.live + size > budgetBytes) {
      const released = flushPool();
      if (released > 0) {
        poolFlushes++;
        poolFlushedBytes += released;
      }
      if (now.live + size > budgetBytes) {
        throw new OutOfMemoryError(
          `GPU out of memory: a ${size}-byte ${who} buffer exceeds the budget of ${budgetBytes} bytes (${now.live} live: ${now.tfjs} tfjs's, ${now.bitopt} bitopt's; tfjs's free pool released first: ${released} bytes)`,
          'gpu-budget',
        );
      }
    }
    const buffer = create(desc);
    buffersCreated++;
    now.live += size;
    now[who] += size;
    // tfjs's buffers are noted once its manager has counted them in use (the acquire above).
    if (who === 'bitopt') notePeak();
    const destroy = buffer.destroy.bind(buffer);
    let destroyed = false;
    buffer.destroy = () => {
      if (!destroyed) {
        destroyed = true;
        now.live -= size;
        now[who] -= size;
      }
      destroy();
    };
    return buffer;
  };

  return {
    stats: () => ({ budgetBytes, maxBindingBytes, now: current(), peak: { ...peak }, peakLiveBytes: peakLive, poolFlushes, poolFlushedBytes, buffersCreated }),
    flushPool,
    withoutSubmit: (fn) => {
      const was = submitHeld;
      submitHeld = true;
      try {
        return fn();
      } finally {
        submitHeld = was;
      }
    },
  };
}
