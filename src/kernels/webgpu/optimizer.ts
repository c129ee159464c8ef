/**
 * The GPU engine behind `createWebgpuOptimizer`: the same optimizer classes (Adam8bit, Lion, ...)
 * over GPU-resident parameters. Groups, options, overrides, step counts and the checkpoint
 * format are the CPU path's own bookkeeping (src/optim/book.ts); this engine owns the GPU state
 * and encodes each step as ONE compute pass (percentile-clipping and LAMB/LARS norm passes, the
 * scales they give, and the fused updates of all tensors), so a step is enqueued with no CPU
 * round trip, in one submit.
 *
 *   const opt = createWebgpuOptimizer(device, Adam8bit, [w1, w2], { lr: 1e-3 });
 *   await opt.step([g1, g2]);          // enqueued; resolves at once (no GPU round trip)
 *   await opt.sync();                  // waits for the GPU; throws (once) an error WebGPU reported for a step
 *   const dict = await opt.stateDictAsync();   // same format as Optimizer.stateDict()
 *   opt.loadStateDict(dict);
 */
/// <reference types="@webgpu/types" />
import { codecOf, type StateFormat } from '../../codecs/index.js';
import { ParamBook, type ParamSlot, type RestoredTensor, type TensorParts } from '../../optim/book.js';
import { describeOptimizerClass, type BaseOptions, type OptimizerClass } from '../../optim/optimizer.js';
import type { Coefficients, Hyper, UpdateRule } from '../../optim/rule.js';
import { stateMap, type StateStore } from '../../optim/state.js';
import type { StateDict, StateEntry, TensorStateDict } from '../../optim/statedict.js';
import { errorsOf, gpuTensorBytes, readBuffer, scoped, writeBytes, type GpuTensor } from './device.js';
import { stateMap4 } from '../../codecs/blockwise4.js';
import { chunkRange, pack32, pack4, pack8, planLayout, unpack32, unpack4, unpack8, type TensorLayout } from './layout.js';
import { wgslRule, type WgslRule } from './rules.js';
import { tableData } from './tables.js';
import { CLIP, clipKernel, finalizeKernel, FIXED_UNIFORMS, fusedKernel, gradNormKernel, tileSize, type KernelShape, type Pass } from './template.js';

export type { OptimizerClass } from '../../optim/optimizer.js';

/** Tuning options of the WebGPU engine (`createWebgpuOptimizer`'s last argument). */
export interface WebgpuEngineOptions {
  /** Largest storage binding to use (default: the device's maxStorageBufferBindingSize). Tests lower it to force chunking. */
  maxBindingBytes?: number;
  /** Most workgroups per chunk dispatch (each walks tiles with a stride). Default 4224. */
  maxWorkgroups?: number;
  /** Use subgroup operations where the device has them (default true). */
  subgroups?: boolean;
  /** 8-bit kernels: vec4s (4-bit: pairs of vec4s) per thread per tile (1, 2 or 4; default DEFAULT_UNROLL). */
  unroll?: number;
  /** 8-bit kernels: each thread owns pairs of vec4s of one block, as the 4-bit kernels (default true; false: one vec4 per block row). */
  pairs?: boolean;
  /** 8-bit kernels: encode through the exact two-level tables (./code-tables.ts) instead of the log2 estimate (default DEFAULT_EXACT). */
  exactEncode?: boolean;
}

/** A parameter group of GPU tensors with its own options (`lr`, `weightDecay`, ...), as in the CPU optimizer. */
export interface GpuParamGroup {
  /** The group's parameters. */
  params: GpuTensor[];
  [option: string]: unknown;
}

/** How `step` records and submits its compute pass. */
export interface WebgpuStepPass {
  /** Timestamp queries written at the start and end of the step's compute pass (for profiling). */
  timestampWrites?: GPUComputePassTimestampWrites;
  /**
   * Record the pass into this encoder, after what it already holds (e.g. a framework's pending
   * work and copies into the parameters), instead of a new one: then the step and that work are
   * one submit.
   */
  encoder?: GPUCommandEncoder;
  /** With `encoder`: submits it (default `queue.submit([encoder.finish()])`), inside the step's error scopes. */
  submit?: () => void;
}

interface GpuState {
  layout: TensorLayout;
  st: GPUBuffer;
  absmax: GPUBuffer | null;
  norm: GPUBuffer | null;
  pipelines: {
    update: GPUComputePipeline;
    norm: GPUComputePipeline | null;
    finalize: GPUComputePipeline | null;
    gradNorm: GPUComputePipeline | null;
    clip: GPUComputePipeline | null;
  };
  bindGroups: {
    grad: GPUBuffer;
    update: GPUBindGroup[];
    norm: GPUBindGroup[];
    finalize: GPUBindGroup | null;
    gradNorm: GPUBindGroup[];
    clip: GPUBindGroup | null;
  } | null;
  uniformSlot: number;
}

/**
 * A parameter's record: the GPU state, and the percentile-clipping buffer (gradient scale, norm
 * history and partial sums), created on first use.
 */
type Slot = ParamSlot<GpuTensor, GpuState, GPUBuffer>;

interface Job {
  slot: Slot;
  state: GpuState;
  c: Coefficients;
  maxUnorm: number;
  percentile: number;
}

const UNIFORM_SLOT = 256;
/**
 * Workgroups per dispatch: enough to fill a large GPU (16 per SM on a 132-SM H100, more than fit at once) while each
 * walks many tiles, so the per-workgroup table load is amortized (H100 sweep in docs/benchmarks.md).
 */
const DEFAULT_WORKGROUPS = 4224; // H200 2026-12-03: 2112 -> 4224 cut 1-5% at 64M (docs/benchmarks.md)
const DEFAULT_UNROLL = 1;
const DEFAULT_PAIRS = true; // H200 2026-12-03, with spread pairing: Adam8bit 0.359 -> 0.330 ms at 64M, no rule slower
const DEFAULT_EXACT = true; // H200 2026-12-02: Adam8bit 0.445 -> 0.365 ms at 64M (docs/benchmarks.md)
const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function isGpuTensor(x: unknown): x is GpuTensor {
  if (x === null || typeof x !== 'object' || !('buffer' in x) || typeof (x as GpuTensor).length !== 'number') return false;
  // A look-alike object (not a GPUBuffer) would only fail deep inside WebGPU.
  const B = (globalThis as { GPUBuffer?: new () => GPUBuffer }).GPUBuffer;
  return typeof B === 'function' ? (x as GpuTensor).buffer instanceof B : (x as GpuTensor).buffer !== null && typeof (x as GpuTensor).buffer === 'object';
}

/** What `takeBack` needs to undo one step. */
interface StepUndo {
  epoch: number;
  slots: Slot[];
  /** Slots that had no state (nor clipping buffer) before this step. */
  fresh: Set<Slot>;
  /** Loads the GPU had not confirmed when this step was submitted (the step fails with them). */
  loads: PendingLoad[];
}

/** The book and GPU state of every parameter at one moment: what a failed load puts back. */
interface BookSnapshot {
  groupOptions: Hyper[];
  overrides: { param: number; options: Hyper }[];
  slots: { step: number; state: GpuState | null; clip: GPUBuffer | null }[];
}

/** A `loadStateDict` whose buffers and uploads the GPU has not confirmed yet. */
interface PendingLoad {
  /** The state it replaced, kept alive until the load is confirmed. */
  before: BookSnapshot;
  /** The buffers it created: every step submitted before it is confirmed uses them (see `step`). */
  buffers: GPUBuffer[];
  failed: boolean;
}

/** An optimizer over GPU-resident parameters (made by `createWebgpuOptimizer`): one compute pass per step. */
export class WebgpuOptimizer<O extends BaseOptions = BaseOptions> {
  /** The update rule (e.g. Adam's). */
  readonly rule: UpdateRule;
  /** The optimizer class's name, e.g. 'Adam8bit' (written into checkpoints). */
  readonly className: string;
  private readonly wgsl: WgslRule;
  private readonly book: ParamBook<GpuTensor, GpuState, GPUBuffer>;
  private readonly maxBinding: number;
  private readonly maxWorkgroups: number;
  private readonly subgroups: boolean;
  private readonly unroll: number;
  private readonly pairs: boolean;
  private readonly exact: boolean;
  private uniforms: GPUBuffer | null = null;
  private uniformSlots = 0;
  private tables: GPUBuffer | null = null;

  constructor(
    /** The device that holds the parameters and states. */
    readonly device: GPUDevice,
    cls: OptimizerClass<O>,
    params: GpuTensor[] | GpuParamGroup[],
    options?: O,
    engine: WebgpuEngineOptions = {},
  ) {
    const { rule, className, classDefaults } = describeOptimizerClass(cls);
    this.rule = rule;
    this.className = className;
    this.book = new ParamBook(rule, { className, defaults: classDefaults }, options);
    if (!Array.isArray(params) || params.length === 0) throw new Error('createWebgpuOptimizer: params must be a non-empty array of GPU tensors');
    const grouped = !params.every(isGpuTensor);
    const groups = grouped ? (params as GpuParamGroup[]) : [{ params: params as GpuTensor[] }];
    groups.forEach((g, gi) => {
      if (g === null || typeof g !== 'object' || !Array.isArray(g.params)) throw new Error('createWebgpuOptimizer: params must be GPU tensors or groups { params: GpuTensor[], ...options }');
      const group = this.book.addGroup(g);
      g.params.forEach((t, pi) => {
        this.checkParam(t, grouped ? `group ${gi} parameter ${pi}` : `parameter ${pi}`);
        this.book.add(t, t.length, group);
      });
    });
    this.wgsl = wgslRule(this.rule.name);
    const limits = device.limits;
    this.maxBinding = Math.min(engine.maxBindingBytes ?? Infinity, limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    this.maxWorkgroups = engine.maxWorkgroups ?? DEFAULT_WORKGROUPS;
    this.subgroups = (engine.subgroups ?? true) && device.features.has('subgroups');
    this.unroll = engine.unroll ?? DEFAULT_UNROLL;
    this.pairs = engine.pairs ?? DEFAULT_PAIRS;
    this.exact = engine.exactEncode ?? DEFAULT_EXACT;
    if (![1, 2, 4].includes(this.unroll)) throw new Error(`createWebgpuOptimizer: unroll must be 1, 2 or 4, got ${String(engine.unroll)}`);
    errorsOf(device);
  }

  private checkParam(t: unknown, where: string): asserts t is GpuTensor {
    if (!isGpuTensor(t)) throw new Error(`createWebgpuOptimizer: ${where} must be a GPU tensor { buffer, length }`);
    if (!Number.isSafeInteger(t.length) || t.length < 0) throw new Error(`createWebgpuOptimizer: ${where} has an invalid length ${t.length}`);
    if (t.buffer.size < gpuTensorBytes(t.length)) {
      throw new Error(`createWebgpuOptimizer: ${where}'s buffer has ${t.buffer.size} bytes, ${t.length} elements need ${gpuTensorBytes(t.length)} (whole vec4s)`);
    }
    if (!(t.buffer.usage & GPUBufferUsage.STORAGE)) throw new Error(`createWebgpuOptimizer: ${where}'s buffer lacks STORAGE usage`);
    if (this.book.has(t)) throw new Error(`createWebgpuOptimizer: ${where} appears more than once`);
    this.joined.set(t, { buffer: t.buffer, length: t.length });
  }

  /** The parameters in the order `step` expects gradients. */
  get params(): GpuTensor[] {
    return this.book.params;
  }

  /** Defaults of this optimizer after the constructor's options. */
  get defaults(): Hyper {
    return this.book.defaults;
  }

  /** Group `index`'s options merged over the defaults. */
  groupOptions(index: number): Hyper {
    return this.book.groupOptions(index);
  }

  /** Changes options of group `index` (all groups when omitted), e.g. a learning-rate schedule. */
  setOptions(options: Partial<O>, index?: number): void {
    this.book.setOptions(options, index);
  }

  /** Per-parameter options, e.g. `{ optimBits: 32 }` (before the parameter's first step). */
  overrideConfig(param: GpuTensor, options: Partial<O>): void {
    const slot = this.book.slotOf(param);
    if (!slot) throw new Error(`${this.className}: overrideConfig: the tensor is not a parameter of this optimizer`);
    this.book.override(slot, options);
  }

  /**
   * Adds a parameter after construction (to group `group`, default 0), with optional override
   * options and a checkpointed state (a state dict's tensor entry, validated first and uploaded);
   * otherwise its state is created at its first step. Returns its index in `params`.
   */
  addParam(param: GpuTensor, init: { group?: number; override?: Partial<O>; state?: TensorStateDict } = {}): number {
    this.checkParam(param, `parameter ${this.book.slots.length}`);
    const { slot, restored } = this.book.join(param, param.length, init);
    if (restored) {
      this.checkMaps(restored, `${this.className}.addParam`);
      this.install(slot, restored);
    }
    return slot.index;
  }

  /** Steps taken on parameter `index`. */
  stepCount(index = 0): number {
    return this.book.slots[index]?.step ?? 0;
  }

  /**
   * Destroys parameter `index`'s GPU state and clipping buffer and zeroes its step count; its
   * slot stays, so no index moves. For an adapter whose parameter is gone for good (a disposed
   * tfjs variable). Steps already submitted still run (WebGPU defers the destroy until they have).
   */
  releaseState(index: number): void {
    const slot = this.book.slots[index];
    if (!slot) throw new Error(`${this.className}.releaseState: no parameter ${index}`);
    this.destroyState(slot);
    slot.step = 0;
  }

  /**
   * Bytes of optimizer state on the GPU (codes, absmax and float32 states): float32 states
   * S·ceil(n/4)·16 bytes per tensor; 8-bit S·ceil(n/blockSize)·(blockSize + 4) bytes; 4-bit
   * S·ceil(n/blockSize)·(blockSize/2 + 4) bytes.
   */
  stateBytes(index?: number): number {
    let b = 0;
    for (const s of index === undefined ? this.book.slots : this.book.slots.slice(index, index + 1)) if (s.state) b += s.state.st.size + (s.state.absmax?.size ?? 0);
    return b;
  }

  /**
   * One step: `grads[i]` is the gradient (a GPU tensor) of `params[i]`; a null (or undefined)
   * entry skips that parameter. All work is encoded into one compute pass and submitted before
   * this returns; the promise resolves right away (no wait for the GPU). Bad arguments reject
   * it and change nothing. An error WebGPU reports for the step (validation, out of memory) is
   * reported once, by the next `step()` (which then runs nothing), `sync()` or
   * `stateDictAsync()`; the failed step ran nothing on the GPU and its step counts are taken
   * back, so the optimizer stays usable. Only device loss is permanent.
   */
  step(grads: (GpuTensor | null | undefined)[], pass?: WebgpuStepPass): Promise<void> {
    const who = `${this.className}.step`;
    try {
      this.reportFailure();
      errorsOf(this.device).check(who);
      this.checkGrads(grads);
      this.checkParamsUnchanged();
    } catch (e) {
      return Promise.reject(e);
    }
    const stepped = this.book.slots.filter((s) => grads[s.index] != null && s.length > 0);
    // A GpuTensor is its whole buffer (no offset): two stepped over one buffer would be updated
    // twice. Checked per step, not at join: an adapter (tfjs) may park several on one buffer until it rebinds them.
    const owner = new Map<GPUBuffer, number>();
    for (const s of stepped) {
      const o = owner.get(s.param.buffer);
      if (o !== undefined) return Promise.reject(new Error(`${who}: parameters ${o} and ${s.index} share one GPU buffer (it would be updated twice; give each its own)`));
      owner.set(s.param.buffer, s.index);
    }
    const undo: StepUndo = { epoch: this.epoch, slots: stepped, fresh: new Set(stepped.filter((s) => !s.state && !s.clip)), loads: [...this.loads] };
    try {
      const reported = scoped(this.device, who, () => {
        // States first (they size the uniform buffer), then bind groups.
        for (const slot of stepped) slot.state ??= this.createState(slot, this.book.optionsFor(slot), null);
        const jobs = stepped.map((slot) => this.prepare(slot, grads[slot.index]!));
        this.writeUniforms(jobs);
        const enc = pass?.encoder ?? this.device.createCommandEncoder();
        // Until the GPU confirms a load, each step names its buffers (an empty clear): if one
        // failed, this submit fails with it and runs nothing, so the load can be undone whole.
        for (const l of this.loads) for (const b of l.buffers) enc.clearBuffer(b, 0, 0);
        const cp = enc.beginComputePass(pass?.timestampWrites ? { timestampWrites: pass.timestampWrites } : {});
        try {
          for (const j of jobs) this.encode(cp, j);
        } finally {
          cp.end(); // a caller's encoder stays usable whatever happened
        }
        if (pass?.encoder && pass.submit) pass.submit();
        else this.device.queue.submit([enc.finish()]);
      });
      this.track(reported, undo);
      return Promise.resolve();
    } catch (e) {
      // Thrown while encoding (nothing was submitted): as if the step was never called.
      this.takeBack(undo);
      return Promise.reject(e);
    }
  }

  /** The first failure of an enqueued step not yet reported (then reported once and cleared). */
  private failure: Error | null = null;
  private pending = new Set<Promise<void>>();
  /** Bumped by loadStateDict: a failure of a step from before it has nothing left to take back. */
  private epoch = 0;
  /** The buffer and length each parameter joined with (reassigning them is refused). */
  private readonly joined = new WeakMap<GpuTensor, { buffer: GPUBuffer; length: number }>();

  private track(p: Promise<void>, undo: StepUndo): void {
    const tracked = p.catch((e: Error) => {
      this.takeBack(undo);
      // A step that failed with a failed load is covered by the load's report.
      if (undo.loads.some((l) => l.failed)) return;
      this.failure ??= new Error(`${e.message} (that step was not applied: its step counts were taken back)`, { cause: e });
    });
    this.pending.add(tracked);
    void tracked.then(() => this.pending.delete(tracked));
  }

  /**
   * Undoes a step that ran nothing on the GPU (a failed submit runs none of its commands): its
   * step counts, and states it created that no step has used since.
   */
  private takeBack(undo: StepUndo): void {
    if (undo.epoch !== this.epoch) return;
    for (const slot of undo.slots) {
      if (slot.step > 0) slot.step -= 1;
      if (undo.fresh.has(slot) && slot.step === 0) this.destroyState(slot);
    }
  }

  /**
   * Throws (once) the error WebGPU reported for an earlier step, if it has arrived; else does
   * nothing. For an adapter that must refuse a step synchronously rather than drop it.
   */
  throwIfFailed(): void {
    this.reportFailure();
  }

  private reportFailure(): void {
    const e = this.failure;
    if (!e) return;
    this.failure = null;
    throw e;
  }

  /** Waits until the GPU has run every step enqueued so far; throws (once) an error WebGPU reported for one of them. */
  async sync(): Promise<void> {
    await Promise.all([...this.pending]);
    await this.device.queue.onSubmittedWorkDone();
    this.reportFailure();
    errorsOf(this.device).check(`${this.className}.sync`);
  }

  /**
   * Accepts the buffer `param.buffer` now points at (a framework adapter moving a parameter to
   * its tensor's new storage, src/kernels/webgpu/movable-params.ts); any other reassignment is
   * refused at the next step. The length stays fixed.
   */
  rebind(param: GpuTensor): void {
    const slot = this.book.slotOf(param);
    const j = this.joined.get(param);
    if (!slot || !j) throw new Error(`${this.className}.rebind: the tensor is not a parameter of this optimizer`);
    if (param.length !== j.length) throw new Error(`${this.className}.rebind: parameter ${slot.index}'s length changed from ${j.length} to ${param.length} (it is fixed)`);
    if (!isGpuTensor(param) || param.buffer.size < gpuTensorBytes(param.length) || !(param.buffer.usage & GPUBufferUsage.STORAGE)) {
      throw new Error(`${this.className}.rebind: parameter ${slot.index}'s new buffer must be a STORAGE GPUBuffer of at least ${gpuTensorBytes(param.length)} bytes`);
    }
    if (j.buffer === param.buffer) return;
    this.joined.set(param, { buffer: param.buffer, length: param.length });
    if (slot.state) slot.state.bindGroups = null;
  }

  /** A tensor's buffer and length are read at every step: changing them after it joined would be ignored or half-used. */
  private checkParamsUnchanged(): void {
    for (const s of this.book.slots) {
      const j = this.joined.get(s.param);
      if (j && (s.param.buffer !== j.buffer || s.param.length !== j.length)) {
        throw new Error(`${this.className}.step: parameter ${s.index}'s ${s.param.buffer !== j.buffer ? 'buffer' : 'length'} was reassigned after it joined the optimizer (a GPU tensor's buffer and length are fixed; make a new tensor and optimizer)`);
      }
    }
  }

  private checkGrads(grads: (GpuTensor | null | undefined)[]): void {
    const slots = this.book.slots;
    if (!Array.isArray(grads)) throw new Error(`${this.className}.step: grads must be an array of GPU tensors`);
    if (grads.length !== slots.length) throw new Error(`${this.className}.step: got ${grads.length} gradients for ${slots.length} parameters`);
    grads.forEach((g, i) => {
      if (g == null) return;
      if (!isGpuTensor(g)) throw new Error(`${this.className}.step: gradient ${i} must be a GPU tensor { buffer, length }`);
      const n = slots[i].length;
      if (g.length !== n) throw new Error(`${this.className}.step: gradient ${i} has ${g.length} elements but its parameter has ${n}`);
      if (g.buffer.size < gpuTensorBytes(n)) throw new Error(`${this.className}.step: gradient ${i}'s buffer is too small (${g.buffer.size} bytes)`);
    });
  }

  private prepare(slot: Slot, grad: GpuTensor): Job {
    const t = this.book.advance(slot);
    const state = slot.state!;
    if (t.percentile < 100) this.enableClip(slot);
    else if (slot.clip) writeBytes(this.device, slot.clip, 0, new Float32Array([1])); // clipping switched off: scale 1
    this.bind(slot, grad);
    return { slot, state, c: t.coefficients, maxUnorm: t.maxUnorm, percentile: t.percentile };
  }

  private shapeFor(slot: Slot, h: Hyper, blockSize?: number): KernelShape {
    const storage = this.book.storageFor(slot, h);
    gpuFormat(storage.format, this.className);
    const bits = storage.format === 'blockwise8' ? 8 : storage.format === 'blockwise4' ? 4 : 32;
    const bs = blockSize ?? storage.blockSize;
    const shape: KernelShape = { bits, blockSize: bits === 32 ? 0 : bs, states: this.rule.states, subgroups: false, unroll: this.unroll, pairs: bits === 8 && this.pairs, exact: bits === 8 && this.exact };
    if (bits === 32 || !this.subgroups) return shape;
    const info = (this.device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const maxSub = info?.subgroupMaxSize ?? 128;
    const minSub = info?.subgroupMinSize ?? 0;
    // Threads per block, and whether a tile is a single block (then no subgroup spans two).
    const threads = bs / (bits === 4 || shape.pairs ? 8 : 4);
    const wholeTile = bs >= tileSize(shape);
    // Blocks small enough for every subgroup: a butterfly inside the subgroup, no barrier.
    if (!wholeTile && threads <= minSub) return { ...shape, subgroups: true, shuffle: true };
    // Otherwise subgroupMax only where a subgroup never spans two blocks: blocks hold whole subgroups (32 on NVIDIA).
    return { ...shape, subgroups: wholeTile || threads >= maxSub };
  }

  private createState(slot: Slot, h: Hyper, blockSize: number | null): GpuState {
    const shape = this.shapeFor(slot, h, blockSize ?? undefined);
    const layout = planLayout(shape, slot.length, this.maxBinding, this.device.limits.minStorageBufferOffsetAlignment, this.maxWorkgroups);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    // New buffers are zero-filled: codes are stored XOR the zero code, so this is state 0.
    // Sized to the tensor (float32: S·ceil(n/4) vec4s; 8-bit: its blocks), not to whole tiles.
    const st = this.device.createBuffer({ size: layout.stateBytes, usage });
    const absmax = shape.bits !== 32 ? this.device.createBuffer({ size: layout.absmaxBytes, usage }) : null;
    const trust = this.rule.usesTrustRatio === true;
    const norm = trust ? this.device.createBuffer({ size: (4 + 2 * layout.partials) * 4, usage }) : null;
    const pipelines = {
      update: this.pipeline(shape, 'update'),
      norm: trust ? this.pipeline(shape, 'norm') : null,
      finalize: trust ? this.pipeline(shape, 'finalize') : null,
      gradNorm: null,
      clip: null,
    };
    const uniformSlot = this.uniformSlots;
    this.uniformSlots += layout.chunks.length;
    return { layout, st, absmax, norm, pipelines, bindGroups: null, uniformSlot };
  }

  /** Switches a tensor to percentile clipping: its buffer, and kernels that read the scale from it. */
  private enableClip(slot: Slot): GPUBuffer {
    if (slot.clip) return slot.clip;
    const state = slot.state!;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const clip = (slot.clip = this.device.createBuffer({ size: (CLIP.partials + state.layout.partials) * 4, usage }));
    writeBytes(this.device, clip, 0, new Float32Array([1]));
    const shape = (state.layout.shape = { ...state.layout.shape, clip: true });
    const p = state.pipelines;
    p.update = this.pipeline(shape, 'update');
    if (p.norm) p.norm = this.pipeline(shape, 'norm');
    p.gradNorm = this.pipeline(shape, 'gradNorm');
    p.clip = this.pipeline(shape, 'clip');
    state.bindGroups = null;
    return clip;
  }

  private pipeline(shape: KernelShape, pass: Pass | 'finalize' | 'gradNorm' | 'clip'): GPUComputePipeline {
    let cache = pipelineCache.get(this.device);
    if (!cache) pipelineCache.set(this.device, (cache = new Map()));
    const key = `${this.rule.name}|${pass}|${pass === 'finalize' || pass === 'clip' ? '' : `${shape.bits}|${shape.blockSize}|${shape.states.join(',')}|${shape.subgroups}|${shape.shuffle ?? false}|${shape.pairs ?? false}|${shape.exact ?? false}|${shape.unroll ?? 1}|${shape.clip ?? false}`}`;
    let p = cache.get(key);
    if (!p) {
      const code =
        pass === 'finalize' ? finalizeKernel(this.wgsl)
        : pass === 'clip' ? clipKernel()
        : pass === 'gradNorm' ? gradNormKernel(tileSize(shape))
        : fusedKernel(this.wgsl, shape, pass);
      const module = this.device.createShaderModule({ code, label: key });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
      cache.set(key, p);
    }
    return p;
  }

  private tablesBuffer(): GPUBuffer {
    if (!this.tables) {
      const data = tableData();
      this.tables = this.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      writeBytes(this.device, this.tables, 0, data);
    }
    return this.tables;
  }

  private uniformBuffer(): GPUBuffer {
    if (!this.uniforms || this.uniforms.size < this.uniformSlots * UNIFORM_SLOT) {
      this.uniforms?.destroy();
      this.uniforms = this.device.createBuffer({ size: Math.max(1, this.uniformSlots) * UNIFORM_SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      for (const s of this.book.slots) if (s.state) s.state.bindGroups = null;
    }
    return this.uniforms;
  }

  /** Bind groups of every chunk, rebuilt when the gradient buffer changes. */
  private bind(slot: Slot, grad: GpuTensor): void {
    const { state, param, clip } = slot as Slot & { state: GpuState };
    const uniforms = this.uniformBuffer();
    if (state.bindGroups && state.bindGroups.grad === grad.buffer) return;
    const l = state.layout;
    const pBytes = gpuTensorBytes(l.length);
    const make = (pipeline: GPUComputePipeline, i: number): GPUBindGroup => {
      const c = l.chunks[i];
      const entries: GPUBindGroupEntry[] = [
        { binding: 0, resource: { buffer: uniforms, offset: (state.uniformSlot + i) * UNIFORM_SLOT, size: UNIFORM_SLOT } },
        { binding: 1, resource: { buffer: param.buffer, ...chunkRange(c, l.paramTileBytes, pBytes) } },
        { binding: 2, resource: { buffer: grad.buffer, ...chunkRange(c, l.paramTileBytes, pBytes) } },
        { binding: 3, resource: { buffer: state.st, ...chunkRange(c, l.stateTileBytes, state.st.size) } },
      ];
      if (state.absmax) {
        entries.push({ binding: 4, resource: { buffer: state.absmax, ...chunkRange(c, l.absmaxTileBytes, l.absmaxBytes) } });
        // The 4-bit kernels have their (16-entry) tables compiled in.
        if (l.shape.bits === 8) entries.push({ binding: 5, resource: { buffer: this.tablesBuffer() } });
      }
      if (state.norm) entries.push({ binding: 6, resource: { buffer: state.norm } });
      if (clip) entries.push({ binding: 7, resource: { buffer: clip } });
      return this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    };
    const uniformAt = (i: number): GPUBindGroupEntry => ({ binding: 0, resource: { buffer: uniforms, offset: (state.uniformSlot + i) * UNIFORM_SLOT, size: UNIFORM_SLOT } });
    const p = state.pipelines;
    state.bindGroups = {
      grad: grad.buffer,
      update: l.chunks.map((_, i) => make(p.update, i)),
      norm: p.norm ? l.chunks.map((_, i) => make(p.norm!, i)) : [],
      finalize: p.finalize
        ? this.device.createBindGroup({
            layout: p.finalize.getBindGroupLayout(0),
            entries: [
              { binding: 0, resource: { buffer: uniforms, offset: state.uniformSlot * UNIFORM_SLOT, size: UNIFORM_SLOT } },
              { binding: 6, resource: { buffer: state.norm! } },
            ],
          })
        : null,
      gradNorm: p.gradNorm
        ? l.chunks.map((c, i) =>
            this.device.createBindGroup({
              layout: p.gradNorm!.getBindGroupLayout(0),
              entries: [
                uniformAt(i),
                { binding: 2, resource: { buffer: grad.buffer, ...chunkRange(c, l.paramTileBytes, pBytes) } },
                { binding: 7, resource: { buffer: clip! } },
              ],
            }),
          )
        : [],
      clip: p.clip
        ? this.device.createBindGroup({ layout: p.clip.getBindGroupLayout(0), entries: [uniformAt(0), { binding: 7, resource: { buffer: clip! } }] })
        : null,
    };
  }

  private writeUniforms(jobs: Job[]): void {
    const data = new ArrayBuffer(this.uniformSlots * UNIFORM_SLOT);
    const view = new DataView(data);
    for (const { state, c, maxUnorm, percentile } of jobs) {
      const ruleUniforms = this.wgsl.uniforms(c);
      state.layout.chunks.forEach((ch, i) => {
        const o = (state.uniformSlot + i) * UNIFORM_SLOT;
        view.setUint32(o, ch.n, true);
        view.setUint32(o + 4, ch.tiles, true);
        view.setUint32(o + 8, ch.partialBase, true);
        view.setUint32(o + 12, state.layout.partials, true);
        view.setUint32(o + 16, maxUnorm > 0 ? 1 : 0, true);
        view.setFloat32(o + 20, 1, true); // gradScale without clipping (with it, the clip buffer has it)
        view.setFloat32(o + 24, c.lr, true);
        view.setFloat32(o + 28, maxUnorm, true);
        view.setFloat32(o + 32, percentile, true);
        this.wgsl.uniformNames.forEach((name, k) => view.setFloat32(o + (FIXED_UNIFORMS + k) * 4, ruleUniforms[name], true));
      });
    }
    this.device.queue.writeBuffer(this.uniformBuffer(), 0, data);
  }

  private encode(cp: GPUComputePassEncoder, job: Job): void {
    const { state } = job;
    const bg = state.bindGroups!;
    // Gradient norm → clipping scale, and update norm → trust ratio: each a per-chunk partial
    // sum followed by a one-workgroup pass that finishes it, all inside this compute pass.
    const reduce = (sum: GPUComputePipeline, sumGroups: GPUBindGroup[], finish: GPUComputePipeline, finishGroup: GPUBindGroup) => {
      cp.setPipeline(sum);
      state.layout.chunks.forEach((c, i) => {
        cp.setBindGroup(0, sumGroups[i]);
        cp.dispatchWorkgroups(c.workgroups);
      });
      cp.setPipeline(finish);
      cp.setBindGroup(0, finishGroup);
      cp.dispatchWorkgroups(1);
    };
    if (job.percentile < 100) reduce(state.pipelines.gradNorm!, bg.gradNorm, state.pipelines.clip!, bg.clip!);
    if (job.maxUnorm > 0) reduce(state.pipelines.norm!, bg.norm, state.pipelines.finalize!, bg.finalize!);
    cp.setPipeline(state.pipelines.update);
    state.layout.chunks.forEach((c, i) => {
      cp.setBindGroup(0, bg.update[i]);
      cp.dispatchWorkgroups(c.workgroups);
    });
  }

  /** A checkpoint in the format of `Optimizer.stateDict()` (reads the GPU state back). */
  async stateDictAsync(): Promise<StateDict> {
    await this.sync();
    // Every read-back copy is submitted now, with the counts and options of this moment: a step
    // enqueued while they are mapped comes after them on the queue, so the dict is one step's.
    const dict = this.book.stateDict(this.book.slots.map(() => ({ states: [], clipHistory: null })));
    const reads = this.book.slots.map((s) => Promise.all([s.state ? this.readStates(s.state) : [], s.clip ? this.readClip(s.clip) : null]));
    const parts = await Promise.all(reads);
    parts.forEach(([states, clipHistory], i) => Object.assign(dict.tensors[i], { states, clipHistory }));
    return dict;
  }

  private async readClip(clip: GPUBuffer): Promise<{ norms: Float64Array; count: number }> {
    const data = await readBuffer(this.device, clip, CLIP.partials * 4);
    const count = new Uint32Array(data)[CLIP.count];
    return { norms: Float64Array.from(new Float32Array(data, CLIP.history * 4, CLIP.size)), count };
  }

  private async readStates(state: GpuState): Promise<StateEntry[]> {
    const l = state.layout;
    const { states } = l.shape;
    if (l.shape.bits === 32) {
      const data = new Float32Array(await readBuffer(this.device, state.st, state.st.size));
      return unpack32(l, states.length, data).map((values, k) => ({ format: 'float32', sign: states[k], values }));
    }
    // Both copies are submitted before the first await (see stateDictAsync).
    const [stBytes, amBytes] = await Promise.all([readBuffer(this.device, state.st, state.st.size), readBuffer(this.device, state.absmax!, l.absmaxBytes)]);
    const st = new Uint8Array(stBytes);
    const am = new Float32Array(amBytes);
    const four = l.shape.bits === 4;
    const { codes, absmax } = (four ? unpack4 : unpack8)(l, st, am);
    return states.map((sign, k) => ({
      format: four ? 'blockwise4' : 'blockwise8',
      sign,
      blockSize: l.shape.blockSize,
      map: (four ? stateMap4 : stateMap)(sign).slice(),
      codes: codes[k],
      absmax: absmax[k],
    }));
  }

  /**
   * Restores a checkpoint of the same optimizer class (from the CPU or GPU path) and uploads it.
   * Everything is validated first; on any error nothing changes: a bad dict throws here. The new
   * buffers are created and uploaded inside WebGPU error scopes and used at once (steps may
   * follow without waiting); the replaced state is kept until the GPU confirms them. If WebGPU
   * reports an error for them (out of memory, validation), the load is undone whole: the
   * optimizer is exactly as before it (state, step counts, options), steps submitted since ran
   * nothing (each names the load's buffers, so it fails with them), and the error is reported
   * once, as a failed step's is, by the next `step()`, `sync()` or `stateDictAsync()`.
   */
  loadStateDict(dict: StateDict): void {
    const who = `${this.className}.loadStateDict`;
    errorsOf(this.device).check(who);
    const parsed = this.book.parse(dict, who);
    for (const t of parsed.tensors) {
      this.checkMaps(t, who);
      if (t.states?.length) gpuFormat(t.states[0].format, this.className);
    }
    const before = this.snapshotBook();
    for (const s of this.book.slots) [s.state, s.clip] = [null, null]; // kept alive in `before`
    let reported: Promise<void>;
    try {
      reported = scoped(this.device, who, () => this.book.commit(parsed, (slot, t) => this.install(slot, t)));
    } catch (e) {
      this.restoreBook(before); // thrown while creating or uploading: nothing was confirmed
      throw e;
    }
    this.epoch++; // steps enqueued before this load have nothing of theirs left to take back
    const load: PendingLoad = { before, buffers: this.book.slots.flatMap((s) => [s.state?.st, s.state?.absmax, s.state?.norm, s.clip].filter((b): b is GPUBuffer => !!b)), failed: false };
    this.loads.push(load);
    const tracked = reported.then(
      () => this.settleLoad(load, null),
      (e: Error) => this.settleLoad(load, e),
    );
    this.pending.add(tracked);
    void tracked.then(() => this.pending.delete(tracked));
  }

  /** Loads not yet confirmed by the GPU, oldest first. */
  private loads: PendingLoad[] = [];

  /**
   * A load's buffers are confirmed (`error` null: the state it replaced is destroyed) or failed:
   * then the state from before it comes back, directly if no later load replaced it, else as the
   * state that later load would put back.
   */
  private settleLoad(load: PendingLoad, error: Error | null): void {
    const i = this.loads.indexOf(load);
    this.loads.splice(i, 1);
    if (!error) {
      this.destroySnapshot(load.before);
      return;
    }
    load.failed = true;
    const next = this.loads[i];
    if (next) {
      this.destroySnapshot(next.before);
      next.before = load.before;
    } else {
      this.restoreBook(load.before);
      this.epoch++; // steps since the load ran nothing, and their counts are part of what was put back
    }
    this.failure ??= new Error(`${error.message} (that loadStateDict was not applied: the optimizer is as before it, and steps enqueued after it were not applied either)`, { cause: error });
  }

  /** Options, overrides, step counts and GPU state of every parameter now (the state objects themselves, not copies). */
  private snapshotBook(): BookSnapshot {
    const d = this.book.stateDict(this.book.slots.map(() => ({ states: [], clipHistory: null })));
    return {
      groupOptions: d.groups.map((g) => g.options as Hyper),
      overrides: d.overrides.map((o) => ({ param: o.param, options: o.options as Hyper })),
      slots: this.book.slots.map((s) => ({ step: s.step, state: s.state, clip: s.clip })),
    };
  }

  /** Puts a snapshot back, destroying the GPU state it replaces. */
  private restoreBook(snap: BookSnapshot): void {
    const tensors = snap.slots.map((s) => ({ step: s.step, states: null, clip: null }));
    this.book.commit({ groupOptions: snap.groupOptions, overrides: snap.overrides, tensors }, (slot) => {
      this.destroyState(slot);
      const old = snap.slots[slot.index];
      [slot.state, slot.clip] = [old.state, old.clip];
      if (slot.state) slot.state.bindGroups = null;
    });
  }

  private destroySnapshot(snap: BookSnapshot): void {
    for (const s of snap.slots) this.destroyGpu(s.state, s.clip);
  }

  /** The WGSL kernels decode the default maps only (their tables are compiled in). */
  private checkMaps(t: RestoredTensor, who: string): void {
    for (const s of t.states ?? []) {
      if (s.format !== 'blockwise8' && s.format !== 'blockwise4') continue;
      const map = (s as unknown as { map: Float32Array }).map;
      const ref = (s.format === 'blockwise4' ? stateMap4 : stateMap)(s.sign);
      if (map.some((v, i) => v !== ref[i])) throw new Error(`${who}: the webgpu backend only runs the dynamic maps; the state dict has another map`);
    }
  }

  /** Gives a tensor without GPU state a restored one (none: created at its next step). */
  private install(slot: Slot, t: RestoredTensor): void {
    if (!t.states || slot.length === 0) return;
    const first = t.states[0];
    gpuFormat(first.format, this.className);
    const codec = codecOf(first);
    const h = { ...this.book.optionsFor(slot), optimBits: codec.bits, min8bitSize: 0 };
    const bs = codec.blockSizeOf(first);
    const state = (slot.state = this.createState(slot, h, bs));
    this.upload(state, t.states);
    if (t.clip) {
      const words = new Float32Array(CLIP.partials);
      words[CLIP.scale] = 1;
      new Uint32Array(words.buffer)[CLIP.count] = t.clip.count;
      words.set(t.clip.norms, CLIP.history);
      writeBytes(this.device, this.enableClip(slot), 0, words);
    }
  }

  private upload(state: GpuState, stores: StateStore[]): void {
    const l = state.layout;
    if (l.shape.bits === 32) {
      const data = pack32(l, stores.map((s) => (s as unknown as { values: Float32Array }).values));
      writeBytes(this.device, state.st, 0, data);
      return;
    }
    const sq = stores as unknown as { codes: Uint8Array; absmax: Float32Array }[];
    const { st, am } = (l.shape.bits === 4 ? pack4 : pack8)(l, sq.map((s) => s.codes), sq.map((s) => s.absmax));
    writeBytes(this.device, state.st, 0, st);
    writeBytes(this.device, state.absmax!, 0, am);
  }

  private destroyState(slot: Slot): void {
    this.destroyGpu(slot.state, slot.clip);
    slot.state = null;
    slot.clip = null;
  }

  private destroyGpu(state: GpuState | null, clip: GPUBuffer | null): void {
    clip?.destroy();
    state?.st.destroy();
    state?.absmax?.destroy();
    state?.norm?.destroy();
  }

  /** Frees the GPU state (the parameters belong to the caller). */
  destroy(): void {
    for (const s of this.book.slots) this.destroyState(s);
    for (const l of this.loads) this.destroySnapshot(l.before);
    this.uniforms?.destroy();
    this.tables?.destroy();
  }
}

/**
 * The optimizer `cls` (e.g. Adam8bit) over GPU tensors on `device`: same options, groups,
 * overrides and checkpoint format as the CPU path (see WebgpuOptimizer).
 */
export function createWebgpuOptimizer<O extends BaseOptions>(
  device: GPUDevice,
  cls: OptimizerClass<O>,
  params: GpuTensor[] | GpuParamGroup[],
  options?: O,
  engine?: WebgpuEngineOptions,
): WebgpuOptimizer<O> {
  return new WebgpuOptimizer(device, cls, params, options, engine);
}

/**
 * The state formats (codecs, src/codecs) this engine has WGSL for: float32 and the 8- and 4-bit
 * branches of ./template.ts. Any other format is refused with an error naming it (a GPU step
 * cannot fall back to the CPU).
 */
const GPU_FORMATS: ReadonlySet<StateFormat> = new Set<StateFormat>(['float32', 'blockwise8', 'blockwise4']);

function gpuFormat(format: StateFormat, who: string): void {
  if (!GPU_FORMATS.has(format)) throw new Error(`${who}: the WebGPU engine has no kernel for state format '${format}' (it runs ${[...GPU_FORMATS].join(', ')})`);
}
