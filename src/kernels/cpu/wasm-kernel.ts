/**
 * The WebAssembly CPU kernel: the fused block-wise update of every built-in rule in 128-bit
 * SIMD (assembly/kernels.ts), split over worker threads for large tensors.
 *
 * Where data lives:
 * - States live in the kernel's shared WebAssembly memory: `placeStates` gives the optimizer
 *   stores whose arrays are views into it (the optimizer keeps them, so `stateDict()`,
 *   `stateBytes()` and everything else work unchanged). A job whose states are elsewhere runs
 *   on placed copies that are written back after the pass.
 * - Parameters and gradients are used in place when they are views into that memory
 *   (`allocFloat32`): zero copy, and worker threads can reach them. Any other Float32Array is
 *   staged through two bounded windows (`runStaged`): kernel memory is the states plus a
 *   constant, whatever the tensor's size.
 * - Every allocation a step needs can be made up front (`reserve`), so the optimizer's step
 *   either throws before changing anything or runs to the end.
 *
 * Jobs the kernel cannot run go to the reference kernel, which computes the same thing: a custom
 * rule (no generated loop) or a format without a WebAssembly part (./wasm-codecs.ts) with a
 * one-time console warning, as does a map without a lookup table; mixed formats silently.
 */
import { validateBlockSize } from '../../quant/blockwise.js';
import { validateMap } from '../../quant/maps.js';
import { RULES } from '../../optim/rules/index.js';
import { CODECS, type StateStore } from '../../codecs/index.js';
import { WASM_CODECS } from './wasm-codecs.js';
import type { CpuKernel, DirectionNorms, UpdateJob } from '../../optim/kernel.js';
import { createReferenceKernel } from './reference.js';
import { MAX_CHUNKS, ThreadPool } from './wasm-threads.js';
import { TableCache } from './wasm-tables.js';
import { wasmRuntime, type WasmRuntime } from './wasm-runtime.js';
import { COEFFICIENT_BASE, DESCRIPTOR_BYTES, DESCRIPTOR_SLOTS as D, FIRST_RULE_SLOT, FIXED_COEFFICIENT_SLOTS, MAX_STATES, WASM_RULES } from '../../generated/kernel-layout.js';

/** Elements per pass for float32 states (any size gives the same result; 8-bit uses its block). */
const FLOAT32_BLOCK = 2048;

/** Elements per chunk a thread claims in a staged tensor (block-aligned; more for tensors past 1G elements). */
const STAGE_CHUNK = 16384;
/** Chunks per staging window: a window is 128K elements, 512 KiB per staged array at most. */
const WINDOW_CHUNKS = 8;

/**
 * How a staged tensor of n elements is cut: `chunks` block-aligned chunks as the runtime splits
 * them (chunk c holds blocks floor(c·B/chunks) to floor((c+1)·B/chunks) of B), in windows of
 * WINDOW_CHUNKS consecutive chunks; `range(k)` is window k's element range.
 */
function stagingGeometry(n: number, block: number) {
  const blocks = Math.ceil(n / block);
  const chunkBlocks = Math.max(1, Math.ceil(STAGE_CHUNK / block), Math.ceil(blocks / MAX_CHUNKS));
  const chunks = Math.ceil(blocks / chunkBlocks);
  const firstBlock = (c: number) => Math.floor((c * blocks) / chunks);
  return {
    chunks,
    windows: Math.ceil(chunks / WINDOW_CHUNKS),
    // Each chunk has at most chunkBlocks blocks (blocks / chunks <= chunkBlocks).
    windowElements: WINDOW_CHUNKS * chunkBlocks * block,
    range(k: number): [number, number] {
      const c0 = k * WINDOW_CHUNKS;
      const c1 = Math.min(chunks, c0 + WINDOW_CHUNKS);
      return [firstBlock(c0) * block, Math.min(n, firstBlock(c1) * block)];
    },
  };
}

/** The descriptor fields of one state. */
interface Binding {
  data: number;
  absmax: number;
  table: number;
}

/** float64 index of the first coefficient slot in the descriptor. */
const F_BASE = COEFFICIENT_BASE / 8;

/** Options of `createWasmKernel`. */
export interface WasmKernelOptions {
  /** Threads per large tensor, the calling thread included. Default: available cores (Node). */
  threads?: number;
  /** Tensors with fewer elements run on the calling thread only. Default 131072. */
  minParallelSize?: number;
  /**
   * 'float32' (default): states (and so 8-bit codes and absmax) computed in float64,
   * bit-identical to the reference kernel; the parameter maths (sqrt, division, p - lr·dir) in
   * float32 on four lanes, within a few ulps of the reference; about 1.35× faster for 8-bit
   * Adam. 'exact': float64 arithmetic throughout, parameters bit-identical to the reference
   * (what tests that compare bit for bit pin).
   */
  precision?: 'exact' | 'float32';
}

/** A region the engine keeps and reuses (scratch, norms, staging): grown, never shrunk. */
interface Area {
  ptr: number;
  bytes: number;
}

/** The state shared by all wasm kernels of a process: runtime, pool, tables, scratch, staging. */
class Engine {
  readonly pool: ThreadPool;
  readonly tables: TableCache;
  readonly desc: number;
  private readonly descI32: Int32Array;
  private readonly descF64: Float64Array;
  private scratch: Area = { ptr: 0, bytes: 0 };
  private norms: Area = { ptr: 0, bytes: 0 };
  private staging: Area = { ptr: 0, bytes: 0 };

  constructor(readonly runtime: WasmRuntime) {
    this.pool = new ThreadPool(runtime);
    this.tables = new TableCache(runtime);
    this.desc = runtime.alloc(DESCRIPTOR_BYTES);
    this.descI32 = runtime.i32(this.desc, DESCRIPTOR_BYTES / 4);
    this.descF64 = runtime.f64(this.desc, DESCRIPTOR_BYTES / 8);
  }

  /**
   * `area` with at least `bytes`. The new region is allocated before the old one is released,
   * so an out-of-memory error leaves the old area in place and still recorded (issue 13: it
   * used to be released first and stay referenced, so later allocations were overwritten).
   */
  private grow(area: Area, bytes: number): Area {
    if (area.bytes >= bytes) return area;
    const ptr = this.runtime.alloc(bytes);
    if (area.ptr) this.runtime.release(area.ptr);
    return { ptr, bytes };
  }

  /** Scratch for `chunks` chunks of one job (the runtime indexes it by chunk). */
  scratchFor(chunks: number): number {
    this.scratch = this.grow(this.scratch, Math.max(1, chunks) * this.runtime.exports.scratchBytes());
    return this.scratch.ptr;
  }

  /** Per-block norm partial sums (two float64 per block). */
  normsFor(blocks: number): number {
    this.norms = this.grow(this.norms, blocks * 16);
    return this.norms.ptr;
  }

  /** Two staging windows of `elements` parameters and gradients (four float32 arrays), reused between calls. */
  stagingFor(elements: number): number {
    this.staging = this.grow(this.staging, 4 * elements * 4);
    return this.staging.ptr;
  }

  setI(slot: number, v: number): void {
    this.descI32[slot] = v;
  }
  setF(slot: number, v: number): void {
    this.descF64[F_BASE + slot] = v;
  }
}

const warned = new Set<string>();
/** The wasm kernel hands a job it cannot run to the reference loop: visibly, once per cause. */
function warnOnce(what: string, why: string): void {
  if (warned.has(what)) return;
  warned.add(what);
  console.warn(`bitopt: the WebAssembly kernel runs ${what} on the slower reference loop: ${why}`);
}

let engine: Engine | undefined;
function sharedEngine(): Engine {
  engine ??= new Engine(wasmRuntime());
  return engine;
}

/** A Float32Array of `length` zeros inside the kernels' memory: parameters and gradients there are used without copying. */
export function allocFloat32(length: number): Float32Array {
  if (!Number.isInteger(length) || length < 0) throw new Error(`allocFloat32: length must be a non-negative integer, got ${String(length)}`);
  // Released once neither the array nor any of its subarrays (nor an optimizer holding one as a
  // parameter) is alive (wasm-runtime.ts, "Ownership").
  return sharedEngine().runtime.allocLeased(length);
}

/** Is `a` inside the kernels' memory (usable without copying)? */
export function isKernelMemory(a: ArrayBufferView): boolean {
  return sharedEngine().runtime.owns(a);
}

/** Available cores: os.availableParallelism() in Node, navigator.hardwareConcurrency elsewhere. */
function defaultThreads(): number {
  const g = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown }; navigator?: { hardwareConcurrency?: number } };
  try {
    const os = g.process?.getBuiltinModule?.('node:os') as { availableParallelism?: () => number; cpus(): unknown[] } | undefined;
    if (os) return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  } catch {
    // fall through
  }
  return Math.max(1, g.navigator?.hardwareConcurrency ?? 1);
}

export interface WasmKernel extends CpuKernel {
  /** Threads per large tensor, the calling thread included (worker threads start in the background). */
  threads: number;
  /** Tensors with fewer elements run on the calling thread only. */
  minParallelSize: number;
  /** Resolves once `threads` threads are running (jobs before that use fewer threads, with identical results). */
  ready(): Promise<void>;
}

interface Plan {
  ruleId: number;
  /** Coefficient names of the rule's float64 slots, from FIRST_RULE_SLOT. */
  coefficients: readonly string[];
  /** The codec's id in the runtime. */
  codec: number;
  block: number;
}

/** A WebAssembly SIMD CPU kernel (multi-threaded for large tensors where shared memory and workers exist); needs WebAssembly SIMD (check \`wasmKernelsSupported()\`). */
export function createWasmKernel(options: WasmKernelOptions = {}): WasmKernel {
  const e = sharedEngine();
  const reference = createReferenceKernel();
  let threads = options.threads ?? defaultThreads();
  const precision = options.precision ?? 'float32';
  if (precision !== 'exact' && precision !== 'float32') throw new Error(`createWasmKernel: precision must be 'exact' or 'float32', got ${String(precision)}`);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`createWasmKernel: threads must be a positive integer, got ${String(options.threads)}`);

  /** How the wasm kernel runs this job, or null for the reference (with a one-time warning for what it lacks). */
  function plan(job: Pick<UpdateJob, 'rule' | 'states' | 'param' | 'blockSize'>): Plan | null {
    const layout = WASM_RULES[job.rule.name];
    if (layout === undefined || RULES[job.rule.name] !== job.rule) {
      warnOnce(`rule '${job.rule.name}'`, 'it is not a built-in rule (no generated WebAssembly loop)');
      return null;
    }
    const { states } = job;
    if (states.length !== job.rule.states.length || states.length > MAX_STATES) return null;
    const format = states[0].format;
    const part = Object.hasOwn(WASM_CODECS, format) ? WASM_CODECS[format] : undefined;
    if (!part) {
      warnOnce(`state format '${format}'`, 'the format has no WebAssembly part (src/kernels/cpu/wasm-codecs.ts)');
      return null;
    }
    if (states.some((s) => s.format !== format || s.length !== job.param.length)) return null;
    const blockwise = CODECS[format].blockwise;
    if (blockwise) {
      try {
        validateBlockSize(job.blockSize);
      } catch {
        return null;
      }
      if (states.some((s) => CODECS[format].blockSizeOf(s) !== job.blockSize)) return null;
    }
    return { ruleId: layout.id, coefficients: layout.coefficients, codec: part.id, block: blockwise ? job.blockSize : FLOAT32_BLOCK };
  }

  /** `states` with every store in kernel memory (new stores where needed; the same array when all are there). */
  function placeStates(states: StateStore[]): StateStore[] {
    let out: StateStore[] | null = null;
    states.forEach((s, k) => {
      const part = Object.hasOwn(WASM_CODECS, s.format) ? WASM_CODECS[s.format] : undefined;
      const moved = part?.adopt(s, e.runtime) ?? null;
      if (moved) (out ??= states.slice())[k] = moved;
    });
    return out ?? states;
  }

  /** The descriptor fields of every state, or null when a state cannot run here (e.g. a map without a table). */
  function bindings(states: StateStore[]): Binding[] | null {
    const out = [];
    for (const s of states) {
      const b = WASM_CODECS[s.format]!.bind(s, e.tables);
      if (!b) {
        warnOnce('a state map', 'the map has no nearest-code table (a cell would need two thresholds)');
        return null;
      }
      out.push(b);
    }
    return out;
  }

  /**
   * Chunks for a tensor of n elements used in place: 1 below minParallelSize, else 4 per thread
   * (threads claim them one by one, which balances a busy machine), block-aligned, at least 16K
   * elements.
   */
  function chunksFor(n: number, block: number): number {
    if (!parallel(n)) return 1;
    const blocks = Math.ceil(n / block);
    return Math.max(1, Math.min(4 * threads, blocks, Math.floor(n / 16384), MAX_CHUNKS));
  }

  /** Whether a tensor of n elements is split over worker threads (starting them if needed). */
  function parallel(n: number): boolean {
    return threads > 1 && n >= kernel.minParallelSize && e.pool.grow(threads);
  }

  /** Throws when `a` is a view into kernel memory that is not (or no longer) allocated: using it would write memory someone else owns. */
  function checkKernelView(a: Float32Array, what: string): boolean {
    const rt = e.runtime;
    if (!rt.owns(a)) return false;
    if (!rt.retain(a)) {
      throw new Error(
        `wasm kernel: the ${what} is a view into the kernels' memory that is not allocated (the array allocFloat32 returned was garbage-collected): keep that array alive, or make views of it with subarray(), which keep it alive`,
      );
    }
    return true;
  }

  /** Runs op (1 update, 2 norms) with p and g in wasm memory (staged in windows if needed); false if a state cannot run here. */
  function execute(job: UpdateJob, p: Plan, op: 1 | 2): boolean {
    // States outside kernel memory (a caller that did not place them) run on placed copies that
    // are written back after the pass: the job's own stores are never swapped.
    const placed = placeStates(job.states);
    const states = bindings(placed);
    if (!states) return false;
    const n = job.param.length;
    const pOwned = checkKernelView(job.param, 'parameter');
    const gOwned = checkKernelView(job.grad, 'gradient');
    const norms = op === 2 ? e.normsFor(Math.ceil(n / p.block)) : 0;
    if (pOwned && gOwned) {
      const chunks = chunksFor(n, p.block);
      writeDescriptor(job, p, states, op, n, job.param.byteOffset, job.grad.byteOffset, e.scratchFor(chunks), chunks, norms);
      e.pool.run(e.desc, chunks);
    } else {
      runStaged(job, p, states, op, pOwned, gOwned, norms);
    }
    if (op === 1) {
      placed.forEach((s, k) => {
        if (s !== job.states[k]) WASM_CODECS[s.format]!.copyInto(s, job.states[k]);
      });
    }
    return true;
  }

  /**
   * A tensor whose parameter or gradient is outside kernel memory, in windows of a few chunks
   * (docs/benchmarks.md, "Staging"): the calling thread copies window k+1 in (and window k-1's
   * parameters back) while the threads compute window k, so the copies overlap the compute and
   * the staging memory is two windows, whatever the tensor's size. The descriptor stays the
   * whole tensor's (block indices, states and norms are global); only the parameter, gradient
   * and scratch pointers are biased per window so that element i of window k lands in its
   * staging buffer (the runtime's u32 address arithmetic wraps, so a bias below 0 is fine).
   */
  function runStaged(job: UpdateJob, p: Plan, states: Binding[], op: 1 | 2, pOwned: boolean, gOwned: boolean, norms: number): void {
    const rt = e.runtime;
    const n = job.param.length;
    const g = stagingGeometry(n, p.block);
    const base = e.stagingFor(g.windowElements);
    const scratch = e.scratchFor(WINDOW_CHUNKS);
    const scratchBytes = rt.exports.scratchBytes();
    const w = g.windowElements;
    // Two buffers each for parameters and gradients: window k uses buffers k % 2.
    const pBuf = [rt.f32(base, w), rt.f32(base + 4 * w, w)];
    const gBuf = [rt.f32(base + 8 * w, w), rt.f32(base + 12 * w, w)];
    const useThreads = parallel(n);
    writeDescriptor(job, p, states, op, n, 0, 0, 0, g.chunks, norms);
    const range = (k: number) => g.range(k);
    const stage = (k: number) => {
      const [s, t] = range(k);
      if (!pOwned) pBuf[k % 2].set(job.param.subarray(s, t));
      if (!gOwned) gBuf[k % 2].set(job.grad.subarray(s, t));
    };
    const copyBack = (k: number) => {
      const [s, t] = range(k);
      job.param.set(pBuf[k % 2].subarray(0, t - s), s);
    };
    stage(0);
    for (let k = 0; k < g.windows; k++) {
      const [s] = range(k);
      const c0 = k * WINDOW_CHUNKS;
      const c1 = Math.min(g.chunks, c0 + WINDOW_CHUNKS);
      e.setI(D.param, pOwned ? job.param.byteOffset : pBuf[k % 2].byteOffset - 4 * s);
      e.setI(D.grad, gOwned ? job.grad.byteOffset : gBuf[k % 2].byteOffset - 4 * s);
      e.setI(D.scratch, scratch - c0 * scratchBytes);
      if (useThreads) e.pool.start(e.desc, c0, c1);
      if (k > 0 && op === 1 && !pOwned) copyBack(k - 1);
      if (k + 1 < g.windows) stage(k + 1);
      if (useThreads) e.pool.join();
      else for (let c = c0; c < c1; c++) rt.exports.run(e.desc, c);
    }
    if (op === 1 && !pOwned) copyBack(g.windows - 1);
  }

  function writeDescriptor(job: UpdateJob, p: Plan, states: Binding[], op: number, n: number, paramPtr: number, gradPtr: number, scratch: number, chunks: number, norms: number): void {
    e.setI(D.op, op);
    e.setI(D.rule, p.ruleId);
    e.setI(D.n, n);
    e.setI(D.block, p.block);
    e.setI(D.bits, p.codec);
    e.setI(D.param, paramPtr);
    e.setI(D.grad, gradPtr);
    states.forEach((s, k) => {
      e.setI(D.data + k, s.data);
      e.setI(D.absmax + k, s.absmax);
      e.setI(D.table + k, s.table);
    });
    e.setI(D.scratch, scratch);
    e.setI(D.chunks, chunks);
    e.setI(D.norms, norms);
    e.setI(D.nstates, job.states.length);
    e.setI(D.float32, precision === 'float32' ? 1 : 0);
    const c = job.coefficients;
    e.setF(FIXED_COEFFICIENT_SLOTS.gradScale, job.gradScale);
    e.setF(FIXED_COEFFICIENT_SLOTS.trust, c.trust);
    p.coefficients.forEach((name, i) => {
      const value = c[name];
      // The generator checked the names against the rule's coefficients(); a custom rule object
      // that shadows a built-in name could still differ, and must not run with a 0 in its place.
      if (typeof value !== 'number') throw new Error(`wasm kernel: rule '${job.rule.name}' gave no coefficient '${name}'`);
      e.setF(FIRST_RULE_SLOT + i, value);
    });
  }

  const kernel: WasmKernel = {
    name: precision === 'float32' ? 'wasm-simd-f32' : 'wasm-simd',
    get threads() {
      return threads;
    },
    set threads(t: number) {
      if (!Number.isInteger(t) || t < 1) throw new Error(`wasm kernel: threads must be a positive integer, got ${String(t)}`);
      threads = t;
    },
    minParallelSize: options.minParallelSize ?? 131072,
    ready: () => e.pool.whenReady(threads),
    placeStates,
    aliasKey: (a) => (e.runtime.owns(a) ? e.runtime : undefined),
    reserve(jobs): void {
      // Everything a later update or directionNorms of these jobs allocates, allocated now: the
      // lookup tables of their maps, scratch, staging windows and norm sums.
      let chunks = 1;
      let window = 0;
      let blocks = 0;
      for (const job of jobs) {
        if (job.param.length === 0) continue;
        const p = plan(job);
        const pOwned = checkKernelView(job.param, 'parameter');
        const gOwned = checkKernelView(job.grad, 'gradient');
        if (!p || !bindings(placeStates(job.states))) continue;
        const n = job.param.length;
        if (pOwned && gOwned) chunks = Math.max(chunks, chunksFor(n, p.block));
        else {
          chunks = Math.max(chunks, WINDOW_CHUNKS);
          window = Math.max(window, stagingGeometry(n, p.block).windowElements);
        }
        if (job.norms) blocks = Math.max(blocks, Math.ceil(n / p.block));
      }
      e.scratchFor(chunks);
      if (window) e.stagingFor(window);
      if (blocks) e.normsFor(blocks);
    },
    update(job): void {
      const p = job.param.length > 0 ? plan(job) : null;
      if (!p || !execute(job, p, 1)) return reference.update(job) as void;
    },
    directionNorms(job): DirectionNorms {
      const p = job.param.length > 0 ? plan(job) : null;
      if (!p || !job.rule.direction || !execute(job, p, 2)) return reference.directionNorms(job) as DirectionNorms;
      // Sum the per-block partial sums in block order: the result does not depend on threads or windows.
      const norms = e.runtime.f64(e.normsFor(0), Math.ceil(job.param.length / p.block) * 2);
      let updateSq = 0;
      let paramSq = 0;
      for (let i = 0; i < norms.length; i += 2) {
        updateSq += norms[i];
        paramSq += norms[i + 1];
      }
      return { updateSq, paramSq };
    },
  };
  return kernel;
}

/**
 * Block-wise quantization with the WebAssembly kernel: the same result as `quantizeBlockwise`
 * (src/quant/blockwise.ts), which it falls back to for maps without a lookup table.
 */
export function wasmQuantizeBlockwise(x: Float32Array, map: Float32Array, blockSize: number): { codes: Uint8Array; absmax: Float32Array } | null {
  // The same checks as quantizeBlockwise: a Float32Array of finite values (NaN has no code).
  if (!(x instanceof Float32Array)) throw new Error(`wasmQuantizeBlockwise: x must be a Float32Array, got ${(x as object)?.constructor?.name ?? typeof x}`);
  validateMap(map, 'wasmQuantizeBlockwise: map');
  validateBlockSize(blockSize, 'wasmQuantizeBlockwise: blockSize');
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new Error(`wasmQuantizeBlockwise: x[${i}] = ${x[i]} is not finite`);
  }
  const e = sharedEngine();
  const table = e.tables.get(map, 'none');
  if (table === null) return null;
  const rt = e.runtime;
  const n = x.length;
  const blocks = Math.ceil(n / blockSize);
  const src = rt.alloc(n * 4 + 16);
  const codes = rt.alloc(n + 16);
  const absmax = rt.alloc(blocks * 4 + 16);
  const scratch = rt.alloc(blockSize * 4 + 64);
  try {
    rt.f32(src, n).set(x);
    rt.exports.quantize(src, n, blockSize, codes, absmax, table, scratch);
    return { codes: rt.u8(codes, n).slice(), absmax: rt.f32(absmax, blocks).slice() };
  } finally {
    for (const ptr of [src, codes, absmax, scratch]) rt.release(ptr);
  }
}

/** Block-wise dequantization with the WebAssembly kernel (same result as `dequantizeBlockwise`). */
export function wasmDequantizeBlockwise(codes: Uint8Array, absmax: Float32Array, map: Float32Array, blockSize: number): Float32Array {
  if (!(codes instanceof Uint8Array)) throw new Error('wasmDequantizeBlockwise: codes must be a Uint8Array');
  if (!(absmax instanceof Float32Array)) throw new Error('wasmDequantizeBlockwise: absmax must be a Float32Array');
  validateMap(map, 'wasmDequantizeBlockwise: map');
  validateBlockSize(blockSize, 'wasmDequantizeBlockwise: blockSize');
  const n = codes.length;
  const blocks = Math.ceil(n / blockSize);
  if (absmax.length !== blocks) throw new Error(`wasmDequantizeBlockwise: absmax has ${absmax.length} values, ${blocks} blocks need ${blocks}`);
  const rt = sharedEngine().runtime;
  const cp = rt.alloc(n + 16);
  const ap = rt.alloc(blocks * 4 + 16);
  const mp = rt.alloc(1024);
  const out = rt.alloc(n * 4 + 16);
  const scratch = rt.alloc(blockSize * 4 + 64);
  try {
    rt.u8(cp, n).set(codes);
    rt.f32(ap, blocks).set(absmax);
    rt.f32(mp, 256).set(map);
    rt.exports.dequantize(cp, n, blockSize, ap, mp, out, scratch);
    return rt.f32(out, n).slice();
  } finally {
    for (const ptr of [cp, ap, mp, out, scratch]) rt.release(ptr);
  }
}
