/**
 * The tfjs wasm backend's heap as a memory wall that fails loudly. tfjs-backend-wasm allocates
 * every tensor with the module's `_malloc` and writes to the address it returns; when the heap
 * (a wasm32 memory, at most 4 GiB) is full, `_malloc` returns 0 and tfjs would write the tensor
 * over address 0. The guard wraps `_malloc` so that a failed allocation throws an
 * OutOfMemoryError instead, and counts the bytes of live tensors; an optional budget below the
 * heap's own limit makes the same wall small enough for CI.
 */
import { tf } from '../tf.js';

/** The part of the Emscripten module of tfjs-backend-wasm the guard uses. */
interface WasmModule {
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  HEAPU8: Uint8Array;
}

/**
 * Which wall an allocation hit: on wasm tfjs's heap, a budget on its tensors, the combined
 * budget or bitopt's kernel memory; on webgpu the budget on live GPU buffers (./gpu-budget.ts)
 * or the device's largest storage binding.
 */
export type OomMemory = 'tfjs-heap' | 'tfjs-budget' | 'combined-budget' | 'bitopt-kernel' | 'gpu-budget' | 'gpu-buffer-limit';

/** A tensor that does not fit: the heap is full (`_malloc` returned 0) or the budget is spent. */
export class OutOfMemoryError extends Error {
  constructor(
    message: string,
    readonly memory: OomMemory,
  ) {
    super(message);
    this.name = 'OutOfMemoryError';
  }
}

export interface HeapStats {
  /** Size of tfjs's wasm memory now (it grows on demand and never shrinks). */
  heapBytes: number;
  /** Bytes of tensors allocated through `_malloc` and not yet freed. */
  liveBytes: number;
  /** The most `liveBytes` has been. */
  peakLiveBytes: number;
  /** The budget on `liveBytes`, or the heap's limit (4 GiB) when none was set. */
  limitBytes: number;
}

export const WASM32_LIMIT = 4 * 1024 ** 3;

export interface HeapGuard {
  stats(): HeapStats;
}

/**
 * Installs the guard on the current tfjs backend, which must be 'wasm'. With `budgetBytes`, an
 * allocation that would take the live tensor bytes past it throws as a full heap would (the
 * budget counts tensors, what `tf.memory()` counts; XNNPACK's internal buffers are in the heap
 * but not in the budget). `otherBytes` is memory outside tfjs that shares the budget (bitopt's
 * kernel memory, for a combined wall).
 */
export function guardTfjsHeap(budgetBytes?: number, otherBytes: () => number = () => 0): HeapGuard {
  if (tf.getBackend() !== 'wasm') throw new Error(`the capacity run needs the tfjs wasm backend (the current one is ${tf.getBackend()})`);
  const wasm = (tf.backend() as unknown as { wasm?: WasmModule }).wasm;
  if (!wasm || typeof wasm._malloc !== 'function') throw new Error('tfjs wasm backend: its module has no _malloc (unsupported tfjs-backend-wasm version)');
  const limit = budgetBytes ?? WASM32_LIMIT;
  const sizes = new Map<number, number>();
  let live = 0;
  let peak = 0;
  // Emscripten's exports start as stubs that replace themselves with the raw export on first
  // call (which would drop a wrapper installed before); one call each resolves them.
  wasm._free(wasm._malloc(16));
  const malloc = wasm._malloc.bind(wasm);
  const free = wasm._free.bind(wasm);
  wasm._malloc = (bytes: number) => {
    if (budgetBytes !== undefined && live + bytes + otherBytes() > budgetBytes) {
      const other = otherBytes();
      throw new OutOfMemoryError(
        `out of memory: ${bytes} more bytes of tfjs tensors exceed the budget of ${budgetBytes} (${live} in tfjs tensors${other ? `, ${other} in bitopt's kernel memory` : ''})`,
        other ? 'combined-budget' : 'tfjs-budget',
      );
    }
    const ptr = malloc(bytes) >>> 0;
    // Emscripten's malloc(0) may return 0 as well; only a real request that got nothing is full.
    if (ptr === 0 && bytes > 0) {
      throw new OutOfMemoryError(`tfjs wasm heap: out of memory: _malloc(${bytes}) returned 0 (heap ${wasm.HEAPU8.length} bytes, ${live} in tensors)`, 'tfjs-heap');
    }
    sizes.set(ptr, bytes);
    live += bytes;
    if (live > peak) peak = live;
    return ptr;
  };
  wasm._free = (ptr: number) => {
    const p = ptr >>> 0;
    live -= sizes.get(p) ?? 0;
    sizes.delete(p);
    free(ptr);
  };
  wasm._free(wasm._malloc(16));
  if (live !== 0 || peak !== 16) throw new Error('tfjs wasm backend: the heap guard did not take (its _malloc is not called through the module)');
  peak = 0;
  return {
    stats: () => ({ heapBytes: wasm.HEAPU8.length, liveBytes: live, peakLiveBytes: peak, limitBytes: limit }),
  };
}

/** Is `e` an out-of-memory failure (the guard's, bitopt's kernel memory, or an Emscripten abort for memory)? */
export function outOfMemoryKind(e: unknown): OomMemory | undefined {
  if (e instanceof OutOfMemoryError) return e.memory;
  if (!(e instanceof Error)) return undefined;
  if (e.cause !== undefined && outOfMemoryKind(e.cause)) return outOfMemoryKind(e.cause);
  // bitopt's webgpu engine reports a failed step as an Error carrying the guard's message.
  if (/GPU out of memory: .* exceeds the budget/.test(e.message)) return 'gpu-budget';
  if (/GPU out of memory: .* exceeds the device's largest binding/.test(e.message)) return 'gpu-buffer-limit';
  if (e.name === 'KernelMemoryError') return 'bitopt-kernel';
  // An allocation inside tfjs's C++ (XNNPACK's packed weights) that finds the heap full aborts the module.
  if (/Aborted\(OOM\)|Cannot enlarge memory|out of memory/i.test(e.message)) return 'tfjs-heap';
  return undefined;
}
