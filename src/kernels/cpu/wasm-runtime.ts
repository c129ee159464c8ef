/**
 * The WebAssembly side of the CPU kernels: one compiled module, one shared memory, one instance
 * on the calling thread, and a small allocator for the memory. Everything the kernels touch
 * (states, scratch, tables, and parameters/gradients that are not staged) lives in this memory.
 *
 * The memory is a shared `WebAssembly.Memory` so that worker threads can run the same module
 * over it. Growing a shared memory never detaches existing views (unlike a non-shared one):
 * `memory.buffer` merely returns a new, longer SharedArrayBuffer. Views made before a grow keep
 * working; `buffers` remembers every buffer handed out so that "is this array ours?" stays
 * answerable after growth.
 *
 * Ownership (docs/reliability.md, invariant 2: memory is never reused while anything still
 * references it):
 * - Every region is released exactly once, by whoever allocated it; a region still recorded
 *   anywhere is never released first (callers allocate the new region, then release the old).
 * - A region handed to user code (`allocFloat32`) is owned by a `Lease` object. Each view of it
 *   that this runtime hands out or learns of (`retain`) holds the lease strongly (a WeakMap from
 *   view to lease), and the region is released only when the lease is garbage-collected, i.e.
 *   when no such view is alive. `subarray` of such a view is one of them.
 */
import { KERNELS_WASM_BASE64 } from './generated/kernels-wasm.js';

export interface KernelExports {
  run(desc: number, chunk: number): void;
  quantize(src: number, n: number, blockSize: number, codes: number, absmax: number, table: number, scratch: number): void;
  dequantize(codes: number, n: number, blockSize: number, absmax: number, map: number, out: number, scratch: number): void;
  scratchBytes(): number;
}

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB: the wasm32 limit (address space is only reserved)
const ALIGN = 64; // cache line: chunks of different threads never share one

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** True where WebAssembly with SIMD, threads (shared memory) and SharedArrayBuffer is usable. */
export function wasmKernelsSupported(): boolean {
  try {
    if (typeof WebAssembly !== 'object' || typeof SharedArrayBuffer !== 'function') return false;
    return WebAssembly.validate(wasmBytes());
  } catch {
    return false;
  }
}

let bytesCache: Uint8Array<ArrayBuffer> | undefined;
function wasmBytes(): Uint8Array<ArrayBuffer> {
  bytesCache ??= decodeBase64(KERNELS_WASM_BASE64);
  return bytesCache;
}

interface Region {
  ptr: number;
  size: number;
}

/** The owner of a region handed to user code: the region lives while any view holding the lease lives. */
class Lease {
  constructor(
    readonly ptr: number,
    readonly bytes: number,
  ) {}
}

/** Thrown when an allocation does not fit under the memory limit; nothing was allocated. */
export class KernelMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelMemoryError';
  }
}

export class WasmRuntime {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly exports: KernelExports;
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private buffer: SharedArrayBuffer;
  /** Free regions below `top`, sorted by address. */
  private free: Region[] = [];
  private top = PAGE; // page 0 stays unused: address 0 is never a valid array
  private readonly sizes = new Map<number, number>();
  private inUse = 0;
  private readonly registry = new FinalizationRegistry<number[]>((ptrs) => ptrs.forEach((p) => this.release(p)));
  /** Views known to hold a lease (allocFloat32 arrays, their subarrays, retained parameters). */
  private readonly leases = new WeakMap<ArrayBufferView, Lease>();
  /** Live leases by region start, to find the lease of a view made without `subarray`. */
  private readonly leaseRefs = new Map<number, WeakRef<Lease>>();
  /**
   * Allocations fail with a KernelMemoryError past this many bytes of memory (default and
   * maximum: the wasm32 limit of 4 GiB). A budget below it makes out-of-memory testable.
   */
  limitBytes = MAX_PAGES * PAGE;

  constructor() {
    this.module = new WebAssembly.Module(wasmBytes());
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(this.module, { env: this.imports() });
    this.exports = instance.exports as unknown as KernelExports;
    this.buffer = this.memory.buffer as unknown as SharedArrayBuffer;
    this.buffers.add(this.buffer);
  }

  /** Imports of the module (also used by the worker threads). */
  imports(): WebAssembly.ModuleImports {
    return {
      memory: this.memory,
      abort: () => {
        throw new Error('bitopt wasm kernel aborted');
      },
    };
  }

  /** Is `a` a view into this runtime's memory (so the kernels can use it in place)? */
  owns(a: ArrayBufferView): boolean {
    return this.buffers.has(a.buffer);
  }

  /** Allocates `bytes` (aligned to 64); the contents are unspecified. */
  alloc(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const r = this.free[i];
      if (r.size < size) continue;
      const ptr = r.ptr;
      if (r.size === size) this.free.splice(i, 1);
      else {
        r.ptr += size;
        r.size -= size;
      }
      this.sizes.set(ptr, size);
      return ptr;
    }
    const ptr = this.top;
    const end = ptr + size;
    const limit = Math.min(this.limitBytes, MAX_PAGES * PAGE);
    if (end > limit) {
      throw new KernelMemoryError(
        `bitopt wasm kernels: out of memory: ${size} more bytes do not fit (${this.inUse} in use, the limit is ${limit}); ` +
          'free optimizers you no longer use, or step smaller models (parameters in plain Float32Arrays cost no kernel memory beyond a bounded staging area)',
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow geometrically so that many small allocations do not grow page by page.
      const need = Math.ceil(end / PAGE);
      const want = Math.min(MAX_PAGES, Math.max(need, Math.ceil((have / PAGE) * 1.25)));
      try {
        this.memory.grow(want - have / PAGE);
      } catch {
        // The engine could not commit the geometric step: try exactly what is needed.
        try {
          this.memory.grow(need - have / PAGE);
        } catch (e) {
          throw new KernelMemoryError(`bitopt wasm kernels: out of memory: the WebAssembly memory cannot grow to ${end} bytes (${(e as Error).message})`);
        }
      }
      this.buffer = this.memory.buffer as unknown as SharedArrayBuffer;
      this.buffers.add(this.buffer);
    }
    this.top = end;
    this.sizes.set(ptr, size);
    this.inUse += size;
    return ptr;
  }

  /** The allocator's high-water mark: memory below it is allocated or on the free list. */
  get extentBytes(): number {
    return this.top;
  }

  /** Bytes allocated now (regions handed out and not yet released), alignment included. */
  get bytesInUse(): number {
    return this.inUse;
  }

  /**
   * A zeroed Float32Array of `length` elements owned by a lease: its memory is released once
   * neither it nor any view that holds the lease (its subarrays, parameters passed to `retain`)
   * is alive.
   */
  allocLeased(length: number): Float32Array {
    const bytes = length * 4;
    const ptr = this.alloc(bytes);
    const lease = new Lease(ptr, bytes);
    this.registry.register(lease, [ptr]);
    this.leaseRefs.set(ptr, new WeakRef(lease));
    const a = this.f32(ptr, length);
    a.fill(0);
    this.bind(a, lease);
    return a;
  }

  /** Makes `view` (and its subarrays) keep `lease` alive. */
  private bind(view: Float32Array, lease: Lease): void {
    this.leases.set(view, lease);
    const rt = this;
    // subarray() of a leased view is leased too: the prototype's subarray would make a view
    // that does not keep the memory alive (the case issue 13 found).
    Object.defineProperty(view, 'subarray', {
      configurable: true,
      writable: true,
      value: function subarray(this: Float32Array, begin?: number, end?: number): Float32Array {
        const sub = Float32Array.prototype.subarray.call(this, begin, end);
        const held = rt.leases.get(this);
        if (held) rt.bind(sub, held);
        return sub;
      },
    });
  }

  /**
   * Checks that `view` (a view into this memory) lies inside one live region and, if that
   * region is leased, makes `view` keep it alive from now on. Returns false for a view over
   * memory that is not allocated (e.g. a view made over `memory.buffer` after its array was
   * collected): such a view must not be used in place.
   */
  retain(view: ArrayBufferView): boolean {
    if (!this.owns(view)) return false;
    const held = this.leases.get(view);
    const start = view.byteOffset;
    const end = start + view.byteLength;
    if (held) return this.sizes.has(held.ptr) && start >= held.ptr && end <= held.ptr + held.bytes;
    for (const [ptr, size] of this.sizes) {
      if (start < ptr || end > ptr + size) continue;
      const ref = this.leaseRefs.get(ptr);
      if (!ref) return true; // a region the kernels own (a state, a table)
      const lease = ref.deref();
      if (!lease) return false; // collected: released at the next finalization turn
      this.leases.set(view, lease);
      return true;
    }
    return false;
  }

  /** Returns a region from `alloc` to the allocator. */
  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    this.leaseRefs.delete(ptr);
    this.inUse -= size;
    let i = 0;
    while (i < this.free.length && this.free[i].ptr < ptr) i++;
    this.free.splice(i, 0, { ptr, size });
    // Coalesce with the next and previous free regions.
    if (i + 1 < this.free.length && ptr + size === this.free[i + 1].ptr) {
      this.free[i].size += this.free[i + 1].size;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].ptr + this.free[i - 1].size === ptr) {
      this.free[i - 1].size += this.free[i].size;
      this.free.splice(i, 1);
    }
  }

  /** Frees `ptrs` once `owner` is garbage-collected. */
  releaseWith(owner: object, ptrs: number[]): void {
    this.registry.register(owner, ptrs);
  }

  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.buffer, ptr, n);
  }
  f64(ptr: number, n: number): Float64Array {
    return new Float64Array(this.buffer, ptr, n);
  }
  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.buffer, ptr, n);
  }
  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.buffer, ptr, n);
  }
}

let shared: WasmRuntime | undefined;

/** The process-wide runtime (created on first use). */
export function wasmRuntime(): WasmRuntime {
  shared ??= new WasmRuntime();
  return shared;
}
