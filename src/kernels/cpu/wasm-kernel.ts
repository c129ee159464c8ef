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
 *   copied into a staging area before the pass and the parameter copied back after it.
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

/** float64 index of the first coefficient slot in the descriptor. */
const F_BASE = COEFFICIENT_BASE / 8;

export interface WasmKernelOptions {
  /** Threads per large tensor, the calling thread included. Default: available cores (Node). */
  threads?: number;
  /** Tensors with fewer elements run on the calling thread only. Default 131072. */
  minParallelSize?: number;
  /**
   * 'exact' (default): float64 arithmetic, bit-identical to the reference kernel. 'float32':
   * states (and so 8-bit codes and absmax) still computed in float64, bit-identical; the
   * parameter maths (sqrt, division, p - lr·dir) in float32 on four lanes, within a few ulps of
   * the reference; about 1.35× faster for 8-bit Adam.
   */
  precision?: 'exact' | 'float32';
}

/** The state shared by all wasm kernels of a process: runtime, pool, tables, scratch. */
class Engine {
  readonly pool: ThreadPool;
  readonly tables: TableCache;
  readonly desc: number;
  private readonly descI32: Int32Array;
  private readonly descF64: Float64Array;
  private scratch = { ptr: 0, threads: 0 };
  private norms = { ptr: 0, bytes: 0 };
  private staging = { ptr: 0, bytes: 0 };

  constructor(readonly runtime: WasmRuntime) {
    this.pool = new ThreadPool(runtime);
    this.tables = new TableCache(runtime);
    this.desc = runtime.alloc(DESCRIPTOR_BYTES);
    this.descI32 = runtime.i32(this.desc, DESCRIPTOR_BYTES / 4);
    this.descF64 = runtime.f64(this.desc, DESCRIPTOR_BYTES / 8);
  }

  scratchFor(threads: number): number {
    if (this.scratch.threads < threads) {
      if (this.scratch.ptr) this.runtime.release(this.scratch.ptr);
      this.scratch = { ptr: this.runtime.alloc(threads * this.runtime.exports.scratchBytes()), threads };
    }
    return this.scratch.ptr;
  }

  normsFor(blocks: number): Float64Array {
    const bytes = blocks * 16;
    if (this.norms.bytes < bytes) {
      if (this.norms.ptr) this.runtime.release(this.norms.ptr);
      this.norms = { ptr: this.runtime.alloc(bytes), bytes };
    }
    return this.runtime.f64(this.norms.ptr, blocks * 2);
  }

  /** A staging area of at least `bytes`, reused between calls. */
  stagingFor(bytes: number): number {
    if (this.staging.bytes < bytes) {
      if (this.staging.ptr) this.runtime.release(this.staging.ptr);
      this.staging = { ptr: this.runtime.alloc(bytes), bytes };
    }
    return this.staging.ptr;
  }

  setI(slot: number, v: number): void {
    this.descI32[slot] = v;
  }
  setF(slot: number, v: number): void {
    this.descF64[F_BASE + slot] = v;
  }
  get normsPtr(): number {
    return this.norms.ptr;
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
  const rt = sharedEngine().runtime;
  const ptr = rt.alloc(length * 4);
  const a = rt.f32(ptr, length);
  a.fill(0);
  // Freed when the array is garbage-collected: keep the returned array itself alive while any
  // view of it (e.g. a subarray) is in use.
  rt.releaseWith(a, [ptr]);
  return a;
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

export function createWasmKernel(options: WasmKernelOptions = {}): WasmKernel {
  const e = sharedEngine();
  const reference = createReferenceKernel();
  let threads = options.threads ?? defaultThreads();
  const precision = options.precision ?? 'exact';
  if (precision !== 'exact' && precision !== 'float32') throw new Error(`createWasmKernel: precision must be 'exact' or 'float32', got ${String(precision)}`);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`createWasmKernel: threads must be a positive integer, got ${String(options.threads)}`);

  /** How the wasm kernel runs this job, or null for the reference (with a one-time warning for what it lacks). */
  function plan(job: UpdateJob): Plan | null {
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
  function bindings(states: StateStore[]): { data: number; absmax: number; table: number }[] | null {
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
   * Chunks for a tensor of n elements: 1 below minParallelSize, else 4 per thread (threads
   * claim them one by one, which balances a busy machine), block-aligned, at least 16K elements.
   */
  function chunksFor(n: number, block: number): number {
    if (threads <= 1 || n < kernel.minParallelSize || !e.pool.grow(threads)) return 1;
    const blocks = Math.ceil(n / block);
    return Math.max(1, Math.min(4 * threads, blocks, Math.floor(n / 16384), MAX_CHUNKS));
  }

  /** Runs op (1 update, 2 norms) with p and g in wasm memory (staged if needed); false if a state cannot run here. */
  function execute(job: UpdateJob, p: Plan, op: 1 | 2): boolean {
    // States outside kernel memory (a caller that did not place them) run on placed copies that
    // are written back after the pass: the job's own stores are never swapped.
    const placed = placeStates(job.states);
    const states = bindings(placed);
    if (!states) return false;
    const rt = e.runtime;
    const n = job.param.length;
    let paramPtr: number;
    let gradPtr: number;
    let stagedParam: Float32Array | null = null;
    const pOwned = rt.owns(job.param);
    const gOwned = rt.owns(job.grad);
    if (!pOwned || !gOwned) {
      const base = e.stagingFor((pOwned ? 0 : n * 4) + (gOwned ? 0 : n * 4) + 64);
      let at = base;
      if (!pOwned) {
        stagedParam = rt.f32(at, n);
        stagedParam.set(job.param);
        at += n * 4;
      }
      if (!gOwned) rt.f32(at, n).set(job.grad);
      paramPtr = pOwned ? job.param.byteOffset : base;
      gradPtr = gOwned ? job.grad.byteOffset : at;
    } else {
      paramPtr = job.param.byteOffset;
      gradPtr = job.grad.byteOffset;
    }
    const chunks = chunksFor(n, p.block);
    const blocks = Math.ceil(n / p.block);
    if (op === 2) e.normsFor(blocks);
    writeDescriptor(job, p, states, op, n, paramPtr, gradPtr, chunks);
    e.pool.run(e.desc, chunks);
    if (op === 1) {
      if (stagedParam) job.param.set(stagedParam);
      placed.forEach((s, k) => {
        if (s !== job.states[k]) WASM_CODECS[s.format]!.copyInto(s, job.states[k]);
      });
    }
    return true;
  }

  function writeDescriptor(
    job: UpdateJob,
    p: Plan,
    states: { data: number; absmax: number; table: number }[],
    op: number,
    n: number,
    paramPtr: number,
    gradPtr: number,
    chunks: number,
  ): void {
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
    e.setI(D.scratch, e.scratchFor(Math.max(chunks, 1)));
    e.setI(D.chunks, chunks);
    e.setI(D.norms, e.normsPtr);
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
    update(job): void {
      const p = job.param.length > 0 ? plan(job) : null;
      if (!p || !execute(job, p, 1)) return reference.update(job) as void;
    },
    directionNorms(job): DirectionNorms {
      const p = job.param.length > 0 ? plan(job) : null;
      if (!p || !job.rule.direction || !execute(job, p, 2)) return reference.directionNorms(job) as DirectionNorms;
      // Sum the per-block partial sums in block order: the result does not depend on threads.
      const norms = e.runtime.f64(e.normsPtr, Math.ceil(job.param.length / p.block) * 2);
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
