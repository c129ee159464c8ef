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
  private readonly registry = new FinalizationRegistry<number[]>((ptrs) => ptrs.forEach((p) => this.release(p)));

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
    if (end > MAX_PAGES * PAGE) throw new Error(`bitopt wasm kernels: out of memory (need ${end} bytes, the limit is 4 GiB)`);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow geometrically so that many small allocations do not grow page by page.
      const want = Math.min(MAX_PAGES, Math.max(Math.ceil(end / PAGE), Math.ceil((have / PAGE) * 1.25)));
      this.memory.grow(want - have / PAGE);
      this.buffer = this.memory.buffer as unknown as SharedArrayBuffer;
      this.buffers.add(this.buffer);
    }
    this.top = end;
    this.sizes.set(ptr, size);
    return ptr;
  }

  /** Returns a region from `alloc` to the allocator. */
  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
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
