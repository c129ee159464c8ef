/**
 * The GPU engine behind `createWebgpuOptimizer`: the same optimizer classes (Adam8bit, Lion, ...)
 * over GPU-resident parameters. The class (run over stand-in arrays) validates options, groups
 * and overrides and supplies the rule and its coefficients; this engine owns the GPU state
 * and encodes each step as ONE compute pass (percentile-clipping and LAMB/LARS norm passes, the
 * scales they give, and the fused updates of all tensors), so a step is enqueued with no CPU
 * round trip.
 *
 *   const opt = createWebgpuOptimizer(device, Adam8bit, [w1, w2], { lr: 1e-3 });
 *   await opt.step([g1, g2]);          // enqueued; resolves at once (no GPU round trip)
 *   await opt.sync();                  // waits for the GPU; throws any error WebGPU reported
 *   const dict = await opt.stateDictAsync();   // same format as Optimizer.stateDict()
 *   opt.loadStateDict(dict);
 */
/// <reference types="@webgpu/types" />
import type { BaseOptions, Optimizer, Params } from '../../optim/optimizer.js';
import { num, type Coefficients, type Hyper, type UpdateRule } from '../../optim/rule.js';
import { stateMap } from '../../optim/state.js';
import { parseTensorState, type StateDict, type StateEntry } from '../../optim/statedict.js';
import { errorsOf, gpuTensorBytes, readBuffer, scoped, writeBytes, type GpuTensor } from './device.js';
import { chunkRange, pack32, pack8, planLayout, unpack32, unpack8, type TensorLayout } from './layout.js';
import { wgslRule, type WgslRule } from './rules.js';
import { TABLES, tableData } from './tables.js';
import { CLIP, clipKernel, finalizeKernel, FIXED_UNIFORMS, fusedKernel, gradNormKernel, tileSize, type KernelShape, type Pass } from './template.js';

export interface WebgpuEngineOptions {
  /** Largest storage binding to use (default: the device's maxStorageBufferBindingSize). Tests lower it to force chunking. */
  maxBindingBytes?: number;
  /** Most workgroups per chunk dispatch (each walks tiles with a stride). Default 2112. */
  maxWorkgroups?: number;
  /** Use subgroup operations where the device has them (default true). */
  subgroups?: boolean;
  /** 8-bit kernels: vec4s per thread per tile (1, 2 or 4; default DEFAULT_UNROLL). */
  unroll?: number;
}

export interface GpuParamGroup {
  params: GpuTensor[];
  [option: string]: unknown;
}

/** An optimizer class of the CPU path, e.g. Adam8bit. */
export type OptimizerClass<O extends BaseOptions> = new (params: Params<O>, options?: O) => Optimizer<O>;

interface GpuState {
  layout: TensorLayout;
  st: GPUBuffer;
  absmax: GPUBuffer | null;
  norm: GPUBuffer | null;
  /** Percentile clipping: gradient scale, norm history and partial sums (created on first use). */
  clip: GPUBuffer | null;
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

interface Slot {
  tensor: GpuTensor;
  stand: Float32Array;
  group: number;
  step: number;
  state: GpuState | null;
}

const UNIFORM_SLOT = 256;
/**
 * Workgroups per dispatch: enough to fill a large GPU (16 per SM on a 132-SM H100, more than fit at once) while each
 * walks many tiles, so the per-workgroup table load is amortized (H100 sweep in docs/benchmarks.md).
 */
const DEFAULT_WORKGROUPS = 2112;
const DEFAULT_UNROLL = 1;
const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function isGpuTensor(x: unknown): x is GpuTensor {
  return x !== null && typeof x === 'object' && 'buffer' in x && typeof (x as GpuTensor).length === 'number';
}

export class WebgpuOptimizer<O extends BaseOptions = BaseOptions> {
  readonly rule: UpdateRule;
  readonly className: string;
  private readonly wgsl: WgslRule;
  private readonly shadow: Optimizer<O>;
  private readonly slots: Slot[] = [];
  private readonly overrides = new Map<GpuTensor, Hyper>();
  private readonly maxBinding: number;
  private readonly maxWorkgroups: number;
  private readonly subgroups: boolean;
  private readonly unroll: number;
  private uniforms: GPUBuffer | null = null;
  private uniformSlots = 0;
  private tables: GPUBuffer | null = null;

  constructor(
    readonly device: GPUDevice,
    cls: OptimizerClass<O>,
    params: GpuTensor[] | GpuParamGroup[],
    options?: O,
    engine: WebgpuEngineOptions = {},
  ) {
    if (!Array.isArray(params) || params.length === 0) throw new Error('createWebgpuOptimizer: params must be a non-empty array of GPU tensors');
    const groups = params.every(isGpuTensor) ? null : (params as GpuParamGroup[]);
    const seen = new Set<GpuTensor>();
    const stand = (t: unknown, where: string): Float32Array => {
      if (!isGpuTensor(t)) throw new Error(`createWebgpuOptimizer: ${where} must be a GPU tensor { buffer, length }`);
      if (!Number.isSafeInteger(t.length) || t.length < 0) throw new Error(`createWebgpuOptimizer: ${where} has an invalid length ${t.length}`);
      if (t.buffer.size < gpuTensorBytes(t.length)) {
        throw new Error(`createWebgpuOptimizer: ${where}'s buffer has ${t.buffer.size} bytes, ${t.length} elements need ${gpuTensorBytes(t.length)} (whole vec4s)`);
      }
      if (!(t.buffer.usage & GPUBufferUsage.STORAGE)) throw new Error(`createWebgpuOptimizer: ${where}'s buffer lacks STORAGE usage`);
      if (seen.has(t)) throw new Error(`createWebgpuOptimizer: ${where} appears more than once`);
      seen.add(t);
      const s = new Float32Array(1);
      this.slots.push({ tensor: t, stand: s, group: 0, step: 0, state: null });
      return s;
    };
    // The CPU class over stand-in arrays validates everything the CPU path validates.
    if (groups) {
      const standGroups = groups.map((g, gi) => {
        if (g === null || typeof g !== 'object' || !Array.isArray(g.params)) throw new Error('createWebgpuOptimizer: params must be GPU tensors or groups { params: GpuTensor[], ...options }');
        const first = this.slots.length;
        const ps = g.params.map((t, pi) => stand(t, `group ${gi} parameter ${pi}`));
        for (let i = first; i < this.slots.length; i++) this.slots[i].group = gi;
        return { ...g, params: ps };
      });
      this.shadow = new cls(standGroups as unknown as Params<O>, options);
    } else {
      this.shadow = new cls((params as GpuTensor[]).map((t, i) => stand(t, `parameter ${i}`)), options);
    }
    this.rule = this.shadow.rule;
    this.className = this.shadow.className;
    this.wgsl = wgslRule(this.rule.name);
    const limits = device.limits;
    this.maxBinding = Math.min(engine.maxBindingBytes ?? Infinity, limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    this.maxWorkgroups = engine.maxWorkgroups ?? DEFAULT_WORKGROUPS;
    this.subgroups = (engine.subgroups ?? true) && device.features.has('subgroups');
    this.unroll = engine.unroll ?? DEFAULT_UNROLL;
    if (![1, 2, 4].includes(this.unroll)) throw new Error(`createWebgpuOptimizer: unroll must be 1, 2 or 4, got ${String(engine.unroll)}`);
    errorsOf(device);
  }

  /** The parameters in the order `step` expects gradients. */
  get params(): GpuTensor[] {
    return this.slots.map((s) => s.tensor);
  }

  /** Changes options of group `index` (all groups when omitted), e.g. a learning-rate schedule. */
  setOptions(options: Partial<O>, index?: number): void {
    const slots = index === undefined ? this.slots : this.slots.filter((s) => s.group === index);
    this.rejectStorageChange(options, slots);
    this.shadow.setOptions(options, index);
  }

  /** Per-parameter options, e.g. `{ optimBits: 32 }` (before the parameter's first step). */
  overrideConfig(param: GpuTensor, options: Partial<O>): void {
    const slot = this.slots.find((s) => s.tensor === param);
    if (!slot) throw new Error(`${this.className}: overrideConfig: the tensor is not a parameter of this optimizer`);
    this.rejectStorageChange(options, [slot]);
    this.shadow.overrideConfig(slot.stand, options); // validates
    this.overrides.set(param, { ...this.overrides.get(param), ...(options as Hyper) });
  }

  private rejectStorageChange(options: object, slots: Slot[]): void {
    const key = ['optimBits', 'blockSize', 'min8bitSize'].find((k) => k in (options ?? {}));
    if (key && slots.some((s) => s.state)) throw new Error(`${this.className}: ${key} cannot change once a parameter has state (set it before the first step)`);
  }

  private optionsFor(slot: Slot): Hyper {
    return { ...this.shadow.groupOptions(slot.group), ...this.overrides.get(slot.tensor) };
  }

  /** Steps taken on parameter `index`. */
  stepCount(index = 0): number {
    return this.slots[index]?.step ?? 0;
  }

  /**
   * Bytes of optimizer state on the GPU (codes, absmax and float32 states): float32 states
   * S·ceil(n/4)·16 bytes per tensor; 8-bit S·ceil(n/blockSize)·(blockSize + 4) bytes.
   */
  stateBytes(): number {
    let b = 0;
    for (const s of this.slots) if (s.state) b += s.state.st.size + (s.state.absmax?.size ?? 0);
    return b;
  }

  /**
   * One step: `grads[i]` is the gradient (a GPU tensor) of `params[i]`. All work is encoded
   * into one compute pass and submitted before this returns; the promise resolves right away
   * (no wait for the GPU). Bad arguments reject it; an error WebGPU reports for the step
   * (validation, out of memory, device lost) rejects the next `step()` and `sync()`.
   */
  step(grads: GpuTensor[], pass?: { timestampWrites?: GPUComputePassTimestampWrites }): Promise<void> {
    const who = `${this.className}.step`;
    try {
      this.throwIfFailed();
      errorsOf(this.device).check(who);
      this.checkGrads(grads);
      const reported = scoped(this.device, who, () => {
        // States first (they size the uniform buffer), then bind groups.
        for (const slot of this.slots) if (slot.tensor.length > 0) slot.state ??= this.createState(slot, this.optionsFor(slot), null);
        const jobs = this.slots.map((slot, i) => this.prepare(slot, grads[i])).filter((j) => j !== null);
        this.writeUniforms(jobs);
        const enc = this.device.createCommandEncoder();
        const cp = enc.beginComputePass(pass?.timestampWrites ? { timestampWrites: pass.timestampWrites } : {});
        for (const j of jobs) this.encode(cp, j);
        cp.end();
        this.device.queue.submit([enc.finish()]);
      });
      this.track(reported);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private failure: Error | null = null;
  private pending = new Set<Promise<void>>();

  private track(p: Promise<void>): void {
    const tracked = p.catch((e: Error) => {
      this.failure ??= e;
    });
    this.pending.add(tracked);
    void tracked.then(() => this.pending.delete(tracked));
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Waits until the GPU has run every step enqueued so far; throws the first error WebGPU reported. */
  async sync(): Promise<void> {
    await Promise.all([...this.pending]);
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfFailed();
    errorsOf(this.device).check(`${this.className}.sync`);
  }

  private checkGrads(grads: GpuTensor[]): void {
    if (!Array.isArray(grads)) throw new Error(`${this.className}.step: grads must be an array of GPU tensors`);
    if (grads.length !== this.slots.length) throw new Error(`${this.className}.step: got ${grads.length} gradients for ${this.slots.length} parameters`);
    grads.forEach((g, i) => {
      if (!isGpuTensor(g)) throw new Error(`${this.className}.step: gradient ${i} must be a GPU tensor { buffer, length }`);
      const n = this.slots[i].tensor.length;
      if (g.length !== n) throw new Error(`${this.className}.step: gradient ${i} has ${g.length} elements but its parameter has ${n}`);
      if (g.buffer.size < gpuTensorBytes(n)) throw new Error(`${this.className}.step: gradient ${i}'s buffer is too small (${g.buffer.size} bytes)`);
    });
  }

  private prepare(slot: Slot, grad: GpuTensor) {
    if (slot.tensor.length === 0) return null;
    const h = this.optionsFor(slot);
    slot.step += 1;
    const c = this.rule.coefficients(h, slot.step);
    const maxUnorm = this.rule.usesTrustRatio ? num(h, 'maxUnorm') : 0;
    const percentile = num(h, 'percentileClipping');
    const state = slot.state!;
    if (percentile < 100) this.enableClip(state);
    else if (state.clip) writeBytes(this.device, state.clip, 0, new Float32Array([1])); // clipping switched off: scale 1
    this.bind(state, slot.tensor, grad);
    return { slot, state, c, maxUnorm, percentile };
  }

  private shapeFor(length: number, h: Hyper, blockSize?: number): KernelShape {
    const eight = num(h, 'optimBits') === 8 && length >= num(h, 'min8bitSize');
    const bs = blockSize ?? num(h, 'blockSize');
    // A subgroup must not span two blocks: blocks of bs/4 threads hold whole subgroups (32 on NVIDIA).
    const maxSub = (this.device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo?.subgroupMaxSize ?? 128;
    return { bits: eight ? 8 : 32, blockSize: eight ? bs : 0, states: this.rule.states, subgroups: this.subgroups && (bs > 1024 || bs / 4 >= maxSub), unroll: this.unroll };
  }

  private createState(slot: Slot, h: Hyper, blockSize: number | null): GpuState {
    const shape = this.shapeFor(slot.tensor.length, h, blockSize ?? undefined);
    const layout = planLayout(shape, slot.tensor.length, this.maxBinding, this.device.limits.minStorageBufferOffsetAlignment, this.maxWorkgroups);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    // New buffers are zero-filled: codes are stored XOR the zero code, so this is state 0.
    // Sized to the tensor (float32: S·ceil(n/4) vec4s; 8-bit: its blocks), not to whole tiles.
    const st = this.device.createBuffer({ size: layout.stateBytes, usage });
    const absmax = shape.bits === 8 ? this.device.createBuffer({ size: layout.absmaxBytes, usage }) : null;
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
    return { layout, st, absmax, norm, clip: null, pipelines, bindGroups: null, uniformSlot };
  }

  /** Switches a state to percentile clipping: its buffer, and kernels that read the scale from it. */
  private enableClip(state: GpuState): GPUBuffer {
    if (state.clip) return state.clip;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    state.clip = this.device.createBuffer({ size: (CLIP.partials + state.layout.partials) * 4, usage });
    writeBytes(this.device, state.clip, 0, new Float32Array([1]));
    const shape = (state.layout.shape = { ...state.layout.shape, clip: true });
    const p = state.pipelines;
    p.update = this.pipeline(shape, 'update');
    if (p.norm) p.norm = this.pipeline(shape, 'norm');
    p.gradNorm = this.pipeline(shape, 'gradNorm');
    p.clip = this.pipeline(shape, 'clip');
    state.bindGroups = null;
    return state.clip;
  }

  private pipeline(shape: KernelShape, pass: Pass | 'finalize' | 'gradNorm' | 'clip'): GPUComputePipeline {
    let cache = pipelineCache.get(this.device);
    if (!cache) pipelineCache.set(this.device, (cache = new Map()));
    const key = `${this.rule.name}|${pass}|${pass === 'finalize' || pass === 'clip' ? '' : `${shape.bits}|${shape.blockSize}|${shape.states.join(',')}|${shape.subgroups}|${shape.unroll ?? 1}|${shape.clip ?? false}`}`;
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
      this.tables = this.device.createBuffer({ size: TABLES.words * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      writeBytes(this.device, this.tables, 0, data);
    }
    return this.tables;
  }

  private uniformBuffer(): GPUBuffer {
    if (!this.uniforms || this.uniforms.size < this.uniformSlots * UNIFORM_SLOT) {
      this.uniforms?.destroy();
      this.uniforms = this.device.createBuffer({ size: Math.max(1, this.uniformSlots) * UNIFORM_SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      for (const s of this.slots) if (s.state) s.state.bindGroups = null;
    }
    return this.uniforms;
  }

  /** Bind groups of every chunk, rebuilt when the gradient buffer changes. */
  private bind(state: GpuState, param: GpuTensor, grad: GpuTensor): void {
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
        entries.push({ binding: 5, resource: { buffer: this.tablesBuffer() } });
      }
      if (state.norm) entries.push({ binding: 6, resource: { buffer: state.norm } });
      if (state.clip) entries.push({ binding: 7, resource: { buffer: state.clip } });
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
                { binding: 7, resource: { buffer: state.clip! } },
              ],
            }),
          )
        : [],
      clip: p.clip
        ? this.device.createBindGroup({ layout: p.clip.getBindGroupLayout(0), entries: [uniformAt(0), { binding: 7, resource: { buffer: state.clip! } }] })
        : null,
    };
  }

  private writeUniforms(jobs: { state: GpuState; c: Coefficients; maxUnorm: number; percentile: number; slot: Slot }[]): void {
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

  private encode(cp: GPUComputePassEncoder, job: { state: GpuState; maxUnorm: number; percentile: number }): void {
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
    const dict = this.shadow.stateDict();
    const tensors = [];
    for (const s of this.slots) {
      tensors.push({
        length: s.tensor.length,
        step: s.step,
        states: s.state ? await this.readStates(s.state) : [],
        clipHistory: s.state?.clip ? await this.readClip(s.state.clip) : null,
      });
    }
    return { ...dict, tensors };
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
    const st = new Uint8Array(await readBuffer(this.device, state.st, state.st.size));
    const am = new Float32Array(await readBuffer(this.device, state.absmax!, l.absmaxBytes));
    const { codes, absmax } = unpack8(l, st, am);
    return states.map((sign, k) => ({
      format: 'blockwise8',
      sign,
      blockSize: l.shape.blockSize,
      map: stateMap(sign).slice(),
      codes: codes[k],
      absmax: absmax[k],
    }));
  }

  /** Restores a checkpoint of the same optimizer class (from the CPU or GPU path) and uploads it. */
  loadStateDict(dict: StateDict): void {
    const who = `${this.className}.loadStateDict`;
    if (dict === null || typeof dict !== 'object' || !Array.isArray(dict.tensors)) throw new Error(`${who}: expected a state dict object`);
    if (dict.tensors.length !== this.slots.length) throw new Error(`${who}: state dict has ${dict.tensors.length} tensors, this optimizer has ${this.slots.length} parameters`);
    const restored = dict.tensors.map((t, i) => parseTensorState(t, this.rule, this.slots[i].tensor.length, `tensor ${i}`));
    for (const r of restored) {
      for (const s of r.states ?? []) {
        if (s.format === 'blockwise8') {
          const map = (s as unknown as { map: Float32Array }).map;
          const ref = stateMap(s.sign);
          if (map.some((v, i) => v !== ref[i])) throw new Error(`${who}: the webgpu backend only runs the dynamic maps; the state dict has another map`);
        }
      }
    }
    // Groups, options and overrides: validated and applied by the class over stand-ins.
    this.shadow.loadStateDict({ ...dict, tensors: this.slots.map(() => ({ length: 1, step: 0, states: [], clipHistory: null })) });
    this.overrides.clear();
    for (const o of dict.overrides ?? []) this.overrides.set(this.slots[o.param].tensor, { ...(o.options as Hyper) });
    restored.forEach((r, i) => {
      const slot = this.slots[i];
      slot.step = r.step;
      this.destroyState(slot);
      if (!r.states || slot.tensor.length === 0) return;
      const first = r.states[0];
      const bs = first.format === 'blockwise8' ? (first as unknown as { blockSize: number }).blockSize : null;
      const h = { ...this.optionsFor(slot), optimBits: first.format === 'blockwise8' ? 8 : 32, min8bitSize: 0 };
      const state = (slot.state = this.createState(slot, h, bs));
      this.upload(state, r.states);
      if (r.clip) {
        const words = new Float32Array(CLIP.partials);
        words[CLIP.scale] = 1;
        new Uint32Array(words.buffer)[CLIP.count] = r.clip.count;
        words.set(r.clip.norms, CLIP.history);
        writeBytes(this.device, this.enableClip(state), 0, words);
      }
    });
  }

  private upload(state: GpuState, stores: NonNullable<ReturnType<typeof parseTensorState>['states']>): void {
    const l = state.layout;
    if (l.shape.bits === 32) {
      const data = pack32(l, stores.map((s) => (s as unknown as { values: Float32Array }).values));
      writeBytes(this.device, state.st, 0, data);
      return;
    }
    const s8 = stores as unknown as { codes: Uint8Array; absmax: Float32Array }[];
    const { st, am } = pack8(l, s8.map((s) => s.codes), s8.map((s) => s.absmax));
    writeBytes(this.device, state.st, 0, st);
    writeBytes(this.device, state.absmax!, 0, am);
  }

  private destroyState(slot: Slot): void {
    if (!slot.state) return;
    slot.state.st.destroy();
    slot.state.absmax?.destroy();
    slot.state.norm?.destroy();
    slot.state.clip?.destroy();
    slot.state = null;
  }

  /** Frees the GPU state (the parameters belong to the caller). */
  destroy(): void {
    for (const s of this.slots) this.destroyState(s);
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
