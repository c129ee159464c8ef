/**
 * The optimizer framework: parameter groups, per-parameter overrides, lazily created states in
 * the chosen format, percentile clipping, trust ratios, and checkpoints. The maths of each
 * optimizer lives in its rule (./rules); the loops live in a kernel (../kernels).
 */
import { createDefaultCpuKernel } from '../kernels/cpu/default.js';
import type { CpuKernel, DirectionNorms, UpdateJob } from '../kernels/types.js';
import { finiteNorm, NormHistory } from './clipping.js';
import { checkOptions, defaultOptions, STORAGE_OPTIONS } from './options.js';
import { num, type Hyper, type UpdateRule } from './rule.js';
import { Blockwise8State, createState, type StateStore } from './state.js';
import {
  parseTensorState,
  STATE_DICT_FORMAT,
  STATE_DICT_VERSION,
  storeToEntry,
  type StateDict,
} from './statedict.js';

/** Options common to every optimizer. Rule-specific ones (betas, eps, ...) extend this. */
export interface BaseOptions {
  lr?: number;
  weightDecay?: number;
  /** 8 (default for the *8bit classes): block-wise 8-bit state. 32: float32 state. */
  optimBits?: 8 | 32;
  /** Elements per quantization block, a power of two in [64, 4096]. Default 256. */
  blockSize?: number;
  /** Tensors with fewer elements keep float32 state. Default 4096. */
  min8bitSize?: number;
  /** Percentile (1..100) of the last 100 gradient norms to clip to; 100 (default) is off. */
  percentileClipping?: number;
}

export type ParamGroup<O> = { params: Float32Array[] } & O;
export type Params<O> = Float32Array[] | ParamGroup<O>[];

interface TensorSlot {
  param: Float32Array;
  group: number;
  step: number;
  states: StateStore[] | null;
  clip: NormHistory | null;
}

interface Group {
  params: Float32Array[];
  options: Hyper;
}

/** Which class this is and what its defaults add to the rule's. */
export interface OptimizerIdentity {
  className: string;
  defaults?: Hyper;
}

export class Optimizer<O extends BaseOptions = BaseOptions> {
  readonly rule: UpdateRule;
  readonly className: string;
  /** Defaults of this optimizer after the constructor's options. */
  readonly defaults: Hyper;
  private readonly groups: Group[] = [];
  private readonly slots: TensorSlot[] = [];
  private readonly overrides = new Map<Float32Array, Hyper>();
  private kernel: CpuKernel = createDefaultCpuKernel();

  constructor(rule: UpdateRule, params: Params<O>, options: O | undefined, identity: OptimizerIdentity) {
    this.rule = rule;
    this.className = identity.className;
    const accepted = defaultOptions(rule, identity.defaults);
    this.defaults = { ...accepted, ...this.check(options) };
    if (!Array.isArray(params) || params.length === 0) throw new Error(`${this.className}: params must be a non-empty array`);
    const isGroup = (x: unknown) => x !== null && typeof x === 'object' && 'params' in x;
    const grouped = params.some(isGroup) ? (params as ParamGroup<O>[]) : [{ params: params as Float32Array[] }];
    const seen = new Set<Float32Array>();
    grouped.forEach((g, gi) => {
      if (g === null || typeof g !== 'object' || !Array.isArray(g.params)) {
        throw new Error(`${this.className}: params must be Float32Arrays or groups { params: Float32Array[], ...options }`);
      }
      const groupOptions = this.check(g, ['params'], `group ${gi}`);
      g.params.forEach((p, pi) => {
        if (!(p instanceof Float32Array)) {
          throw new Error(`${this.className}: group ${gi} parameter ${pi} must be a Float32Array, got ${(p as unknown)?.constructor?.name ?? typeof p}`);
        }
        if (seen.has(p)) throw new Error(`${this.className}: group ${gi} parameter ${pi} appears more than once`);
        seen.add(p);
        this.slots.push({ param: p, group: gi, step: 0, states: null, clip: null });
      });
      this.groups.push({ params: [...g.params], options: groupOptions });
    });
  }

  private check(options: unknown, ignore: readonly string[] = [], where = ''): Hyper {
    const who = where ? `${this.className} (${where})` : this.className;
    const h = checkOptions(options, defaultOptions(this.rule), who, ignore);
    this.rule.validate?.({ ...defaultOptions(this.rule), ...h }, who);
    return h;
  }

  /** The parameters, flattened over groups, in the order `step` expects gradients. */
  get params(): Float32Array[] {
    return this.slots.map((s) => s.param);
  }

  /** Group `index`'s options merged over the defaults. */
  groupOptions(index: number): Hyper {
    const g = this.groups[index];
    if (!g) throw new Error(`${this.className}: no parameter group ${index}`);
    return { ...this.defaults, ...g.options };
  }

  /** Changes options of group `index` (all groups when omitted), e.g. a learning-rate schedule. */
  setOptions(options: Partial<O>, index?: number): void {
    const h = this.check(options);
    this.rejectStorageChange(h, index === undefined ? this.slots : this.slots.filter((s) => s.group === index));
    const targets = index === undefined ? this.groups : [this.groups[index]];
    if (targets.some((g) => !g)) throw new Error(`${this.className}: no parameter group ${String(index)}`);
    for (const g of targets) g.options = { ...g.options, ...h };
  }

  /** Per-parameter options, e.g. `{ optimBits: 32 }` for an embedding (set before its first step). */
  overrideConfig(param: Float32Array, options: Partial<O>): void {
    const slot = this.slots.find((s) => s.param === param);
    if (!slot) throw new Error(`${this.className}: overrideConfig: the array is not a parameter of this optimizer`);
    const h = this.check(options);
    this.rejectStorageChange(h, [slot]);
    this.overrides.set(param, { ...this.overrides.get(param), ...h });
  }

  private rejectStorageChange(h: Hyper, slots: TensorSlot[]): void {
    const key = STORAGE_OPTIONS.find((k) => k in h);
    if (key && slots.some((s) => s.states)) {
      throw new Error(`${this.className}: ${key} cannot change once a parameter has state (set it before the first step)`);
    }
  }

  /** Options in force for one parameter: defaults, then its group's, then its overrides. */
  private optionsFor(slot: TensorSlot): Hyper {
    return { ...this.defaults, ...this.groups[slot.group].options, ...this.overrides.get(slot.param) };
  }

  /** Uses `kernel` for the CPU loops (the WebAssembly kernels plug in here). */
  setKernel(kernel: CpuKernel): void {
    this.kernel = kernel;
  }

  /**
   * One optimizer step: `grads[i]` is the gradient of `params[i]`. Every gradient is checked
   * before any parameter or state changes.
   */
  async step(grads: Float32Array[]): Promise<void> {
    this.checkGrads(grads);
    for (let i = 0; i < this.slots.length; i++) await this.stepTensor(this.slots[i], grads[i]);
  }

  private checkGrads(grads: Float32Array[]): void {
    if (!Array.isArray(grads)) throw new Error(`${this.className}.step: grads must be an array of Float32Array`);
    if (grads.length !== this.slots.length) {
      throw new Error(`${this.className}.step: got ${grads.length} gradients for ${this.slots.length} parameters`);
    }
    grads.forEach((g, i) => {
      if (!(g instanceof Float32Array)) throw new Error(`${this.className}.step: gradient ${i} must be a Float32Array, got ${(g as unknown)?.constructor?.name ?? typeof g}`);
      const n = this.slots[i].param.length;
      if (g.length !== n) throw new Error(`${this.className}.step: gradient ${i} has ${g.length} elements but its parameter has ${n}`);
    });
  }

  private async stepTensor(slot: TensorSlot, grad: Float32Array): Promise<void> {
    const job = this.prepareJob(slot, grad);
    if (!job) return;
    if (job.maxUnorm > 0) applyTrustRatio(job, await this.kernel.directionNorms(job));
    await this.kernel.update(job);
  }

  /**
   * `step` without awaiting, for callers that cannot (TensorFlow.js's `applyGradients`).
   * Needs a kernel that answers synchronously, like the reference kernel.
   */
  stepSync(grads: Float32Array[]): void {
    this.checkGrads(grads);
    for (let i = 0; i < this.slots.length; i++) {
      const job = this.prepareJob(this.slots[i], grads[i]);
      if (!job) continue;
      if (job.maxUnorm > 0) applyTrustRatio(job, notPromise(this.kernel.directionNorms(job), this.kernel.name));
      notPromise(this.kernel.update(job), this.kernel.name);
    }
  }

  /**
   * Points parameter `index` at another array of the same length (its state, step count and
   * overrides stay): lets an adapter step a tensor's current storage in place instead of a copy.
   */
  replaceParam(index: number, param: Float32Array): void {
    const slot = this.slots[index];
    if (!slot) throw new Error(`${this.className}.replaceParam: no parameter ${index}`);
    if (!(param instanceof Float32Array) || param.length !== slot.param.length) {
      throw new Error(`${this.className}.replaceParam: parameter ${index} needs a Float32Array of ${slot.param.length} elements`);
    }
    if (this.slots.some((s) => s !== slot && s.param === param)) throw new Error(`${this.className}.replaceParam: the array is already another parameter`);
    const group = this.groups[slot.group].params;
    group[group.indexOf(slot.param)] = param;
    const override = this.overrides.get(slot.param);
    if (override) {
      this.overrides.delete(slot.param);
      this.overrides.set(param, override);
    }
    slot.param = param;
  }

  /** The update job of one tensor (null for an empty one); advances its step count. */
  private prepareJob(slot: TensorSlot, grad: Float32Array): (UpdateJob & { maxUnorm: number }) | null {
    if (slot.param.length === 0) return null;
    const h = this.optionsFor(slot);
    const blockSize = num(h, 'blockSize');
    slot.states ??= this.createStates(slot.param.length, h);
    slot.step += 1;
    let gradScale = 1;
    const percentile = num(h, 'percentileClipping');
    if (percentile < 100) {
      slot.clip ??= new NormHistory();
      gradScale = slot.clip.record(finiteNorm(grad), percentile);
    }
    return {
      rule: this.rule,
      param: slot.param,
      grad,
      states: slot.states,
      coefficients: this.rule.coefficients(h, slot.step),
      gradScale,
      // A restored checkpoint's 8-bit states keep the block size they were written with.
      blockSize: slot.states.find((s) => s instanceof Blockwise8State)?.blockSize ?? blockSize,
      maxUnorm: this.rule.usesTrustRatio ? num(h, 'maxUnorm') : 0,
    };
  }

  private createStates(length: number, h: Hyper): StateStore[] {
    const eightBit = num(h, 'optimBits') === 8 && length >= num(h, 'min8bitSize');
    return this.rule.states.map((sign) => createState(eightBit ? 'blockwise8' : 'float32', sign, length, num(h, 'blockSize')));
  }

  /** Bytes of optimizer state held now (codes, absmax and float32 states). */
  stateBytes(): number {
    let bytes = 0;
    for (const s of this.slots) for (const st of s.states ?? []) bytes += st.bytes;
    return bytes;
  }

  /** Steps taken on parameter `index`. */
  stepCount(index = 0): number {
    return this.slots[index]?.step ?? 0;
  }

  /** A self-describing checkpoint of all state (copies; later steps do not change it). */
  stateDict(): StateDict {
    const index = new Map(this.slots.map((s, i) => [s.param, i]));
    return {
      format: STATE_DICT_FORMAT,
      version: STATE_DICT_VERSION,
      optimizer: this.className,
      rule: this.rule.name,
      groups: this.groups.map((g) => ({ options: plain(g.options), params: g.params.map((p) => index.get(p)!) })),
      overrides: [...this.overrides].map(([p, o]) => ({ param: index.get(p)!, options: plain(o) })),
      tensors: this.slots.map((s) => ({
        length: s.param.length,
        step: s.step,
        states: (s.states ?? []).map(storeToEntry),
        clipHistory: s.clip ? { norms: s.clip.norms.slice(), count: s.clip.count } : null,
      })),
    };
  }

  /**
   * Restores a checkpoint written by `stateDict()` of the same optimizer over parameters of the
   * same shapes. Everything is validated first; on any error nothing changes.
   */
  loadStateDict(dict: StateDict): void {
    const who = `${this.className}.loadStateDict`;
    if (dict === null || typeof dict !== 'object') throw new Error(`${who}: expected a state dict object`);
    if (dict.format !== STATE_DICT_FORMAT) throw new Error(`${who}: not a bitopt optimizer state (format ${JSON.stringify(dict.format)})`);
    if (dict.version !== STATE_DICT_VERSION) throw new Error(`${who}: unsupported state dict version ${String(dict.version)} (this build reads ${STATE_DICT_VERSION})`);
    if (dict.rule !== this.rule.name || dict.optimizer !== this.className) {
      throw new Error(`${who}: state dict is from ${String(dict.optimizer)} (rule '${String(dict.rule)}'), this optimizer is ${this.className} (rule '${this.rule.name}')`);
    }
    if (!Array.isArray(dict.groups) || dict.groups.length !== this.groups.length) {
      throw new Error(`${who}: state dict has ${dict.groups?.length} parameter groups, this optimizer has ${this.groups.length}`);
    }
    if (!Array.isArray(dict.tensors) || dict.tensors.length !== this.slots.length) {
      throw new Error(`${who}: state dict has ${dict.tensors?.length} tensors, this optimizer has ${this.slots.length} parameters`);
    }
    const groupOptions = dict.groups.map((g, gi) => {
      const mine = this.groups[gi].params.length;
      if (!Array.isArray(g?.params) || g.params.length !== mine) {
        throw new Error(`${who}: group ${gi} has ${g?.params?.length} parameters in the state dict, ${mine} here`);
      }
      return this.check(g.options, [], `group ${gi}`);
    });
    if (dict.overrides != null && !Array.isArray(dict.overrides)) throw new Error(`${who}: overrides must be an array, got ${typeof dict.overrides}`);
    const overrides = (dict.overrides ?? []).map((o) => {
      const slot = this.slots[o?.param];
      if (!slot) throw new Error(`${who}: override for unknown parameter ${String(o?.param)}`);
      return [slot.param, this.check(o.options, [], `override of parameter ${o.param}`)] as const;
    });
    const restored = dict.tensors.map((t, i) => parseTensorState(t, this.rule, this.slots[i].param.length, `tensor ${i}`));
    // Everything is valid: apply.
    groupOptions.forEach((o, gi) => (this.groups[gi].options = o));
    this.overrides.clear();
    for (const [p, o] of overrides) this.overrides.set(p, o);
    restored.forEach((r, i) => Object.assign(this.slots[i], r));
  }
}

/** Clamps the update norm to maxUnorm·||p||; a zero-norm tensor is updated unscaled. */
function applyTrustRatio(job: UpdateJob & { maxUnorm: number }, { updateSq, paramSq }: DirectionNorms): void {
  const pn = Math.sqrt(paramSq);
  const un = Math.sqrt(updateSq);
  if (pn > 0 && un > job.maxUnorm * pn) job.coefficients.trust = (job.maxUnorm * pn) / un;
}

function notPromise<T>(value: T | Promise<T>, kernel: string): T {
  if (value instanceof Promise) throw new Error(`stepSync: kernel '${kernel}' is asynchronous; use step() or a synchronous kernel`);
  return value;
}

function plain(h: Hyper): Record<string, number | number[]> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Array.isArray(v) ? [...v] : (v as number)]));
}
