/**
 * The CPU optimizer over Float32Arrays: a `ParamBook` (./book.ts: groups, options, overrides,
 * step counts, checkpoints) plus what only the CPU does: states as StateStores, percentile
 * clipping and trust ratios computed here, and the loops handed to a kernel (./kernel.ts; the
 * entry points inject the default one). The maths of each optimizer lives in its rule (./rules).
 */
import { ParamBook, storedParts, type OptimizerIdentity, type ParamSlot } from './book.js';
import { finiteNorm, NormHistory } from './clipping.js';
import { createCpuKernel, type CpuKernel, type DirectionNorms, type UpdateJob } from './kernel.js';
import type { Hyper, UpdateRule } from './rule.js';
import { codecOf } from '../codecs/index.js';
import type { StateStore } from './state.js';
import type { StateDict, TensorStateDict } from './statedict.js';

export type { OptimizerIdentity } from './book.js';

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

/** An optimizer class, e.g. Adam8bit. */
export type OptimizerClass<O extends BaseOptions = BaseOptions> = new (params: Params<O>, options?: O) => Optimizer<O>;

/** A class's identity, read without building an optimizer (see `describeOptimizerClass`). */
export interface OptimizerDescription {
  rule: UpdateRule;
  className: string;
  /** What the class adds to the rule's defaults (e.g. `{ optimBits: 8 }`). */
  classDefaults: Hyper;
}

type Slot = ParamSlot<Float32Array, StateStore[], NormHistory>;

/** Passed as `params`, makes the constructor report the class's identity (thrown, so no instance exists). */
const DESCRIBE = Symbol('bitopt.describeOptimizerClass');

class Described {
  constructor(readonly description: OptimizerDescription) {}
}

const descriptions = new WeakMap<object, OptimizerDescription>();

/**
 * The rule, class name and class defaults of an optimizer class (e.g. Adam8bit), for engines
 * that take a class but keep their own parameters (WebGPU, tfjs). The class's constructor runs
 * only up to `super()`, which reports its arguments by throwing: no optimizer is built and no
 * parameter allocated.
 */
export function describeOptimizerClass(cls: OptimizerClass<never> | OptimizerClass): OptimizerDescription {
  const known = descriptions.get(cls);
  if (known) return known;
  try {
    new (cls as unknown as new (params: unknown) => unknown)(DESCRIBE);
  } catch (e) {
    if (e instanceof Described) {
      descriptions.set(cls, e.description);
      return e.description;
    }
    throw new Error(`${String((cls as { name?: string })?.name)} is not a bitopt optimizer class (its constructor must pass its params to Optimizer): ${(e as Error)?.message}`);
  }
  throw new Error(`${String((cls as { name?: string })?.name)} is not a bitopt optimizer class`);
}

const isGroup = (x: unknown) => x !== null && typeof x === 'object' && 'params' in x;
const typeName = (x: unknown) => (x as object)?.constructor?.name ?? typeof x;

export class Optimizer<O extends BaseOptions = BaseOptions> {
  readonly rule: UpdateRule;
  readonly className: string;
  private readonly book: ParamBook<Float32Array, StateStore[], NormHistory>;
  private kernel: CpuKernel | null = null;
  /** The step still running, if any (null when the optimizer is idle). */
  private running: Promise<void> | null = null;

  constructor(rule: UpdateRule, params: Params<O>, options: O | undefined, identity: OptimizerIdentity) {
    if ((params as unknown) === DESCRIBE) throw new Described({ rule, className: identity.className, classDefaults: { ...identity.defaults } });
    this.rule = rule;
    this.className = identity.className;
    this.book = new ParamBook(rule, identity, options);
    if (!Array.isArray(params) || params.length === 0) throw new Error(`${this.className}: params must be a non-empty array`);
    const grouped = params.some(isGroup) ? (params as ParamGroup<O>[]) : [{ params: params as Float32Array[] }];
    grouped.forEach((g, gi) => {
      if (g === null || typeof g !== 'object' || !Array.isArray(g.params)) {
        throw new Error(`${this.className}: params must be Float32Arrays or groups { params: Float32Array[], ...options }`);
      }
      const group = this.book.addGroup(g);
      g.params.forEach((p, pi) => {
        if (!(p instanceof Float32Array)) throw new Error(`${this.className}: group ${gi} parameter ${pi} must be a Float32Array, got ${typeName(p)}`);
        if (this.book.has(p)) throw new Error(`${this.className}: group ${gi} parameter ${pi} appears more than once`);
        this.book.add(p, p.length, group);
      });
    });
  }

  /** Defaults of this optimizer after the constructor's options. */
  get defaults(): Hyper {
    return this.book.defaults;
  }

  /** The parameters, flattened over groups, in the order `step` expects gradients. */
  get params(): Float32Array[] {
    return this.book.params;
  }

  /** Group `index`'s options merged over the defaults. */
  groupOptions(index: number): Hyper {
    return this.book.groupOptions(index);
  }

  /** Changes options of group `index` (all groups when omitted), e.g. a learning-rate schedule. */
  setOptions(options: Partial<O>, index?: number): void {
    this.idle('setOptions');
    this.book.setOptions(options, index);
  }

  /** Per-parameter options, e.g. `{ optimBits: 32 }` for an embedding (set before its first step). */
  overrideConfig(param: Float32Array, options: Partial<O>): void {
    this.idle('overrideConfig');
    const slot = this.book.slotOf(param);
    if (!slot) throw new Error(`${this.className}: overrideConfig: the array is not a parameter of this optimizer`);
    this.book.override(slot, options);
  }

  /**
   * Adds a parameter after construction, to group `group` (default 0), with optional override
   * options and a checkpointed state (a `stateDict().tensors[i]` entry, validated first);
   * otherwise its state is created at its first step. Returns its index in `params`.
   */
  addParam(param: Float32Array, init: { group?: number; override?: Partial<O>; state?: TensorStateDict } = {}): number {
    this.idle('addParam');
    if (!(param instanceof Float32Array)) throw new Error(`${this.className}.addParam: the parameter must be a Float32Array, got ${typeName(param)}`);
    if (this.book.has(param)) throw new Error(`${this.className}.addParam: the array is already a parameter`);
    const { slot, restored } = this.book.join(param, param.length, init);
    if (restored) {
      slot.state = restored.states;
      slot.clip = restored.clip;
    }
    return slot.index;
  }

  /** Uses `kernel` for the CPU loops (the WebAssembly kernels plug in here). */
  setKernel(kernel: CpuKernel): void {
    this.kernel = kernel;
  }

  /** The kernel in use: the one set, else one from the injected default factory (src/optim/kernel.ts). */
  private get cpuKernel(): CpuKernel {
    return (this.kernel ??= createCpuKernel());
  }

  /**
   * One optimizer step: `grads[i]` is the gradient of `params[i]`; a null (or undefined) entry
   * skips that parameter (its values, state and step count stay). Every gradient is checked
   * before any parameter or state changes.
   */
  async step(grads: (Float32Array | null | undefined)[]): Promise<void> {
    this.checkGrads(grads);
    // Steps run one at a time, in call order: a step called before the previous one finished
    // (not awaited) waits for it instead of interleaving with it tensor by tensor.
    const previous = this.running;
    const run = (async () => {
      if (previous) await previous.catch(() => undefined);
      const kernel = this.cpuKernel;
      for (const slot of this.book.slots) {
        const job = this.prepareJob(slot, grads[slot.index], kernel);
        if (!job) continue;
        if (job.maxUnorm > 0) applyTrustRatio(job, await kernel.directionNorms(job));
        await kernel.update(job);
      }
    })();
    this.running = run;
    try {
      await run;
    } finally {
      if (this.running === run) this.running = null;
    }
  }

  /** Calls that read or change state while a step runs would see it half done: refused, naming the fix. */
  private idle(what: string): void {
    if (this.running) throw new Error(`${this.className}.${what}: a step is still running; await opt.step(...) before calling ${what}`);
  }

  /**
   * `step` without awaiting, for callers that cannot (TensorFlow.js's `applyGradients`).
   * Needs a kernel that answers synchronously, like the reference kernel.
   */
  stepSync(grads: (Float32Array | null | undefined)[]): void {
    this.idle('stepSync');
    this.checkGrads(grads);
    const kernel = this.cpuKernel;
    for (const slot of this.book.slots) {
      const job = this.prepareJob(slot, grads[slot.index], kernel);
      if (!job) continue;
      if (job.maxUnorm > 0) applyTrustRatio(job, notPromise(kernel.directionNorms(job), kernel.name));
      notPromise(kernel.update(job), kernel.name);
    }
  }

  private checkGrads(grads: (Float32Array | null | undefined)[]): void {
    const slots = this.book.slots;
    if (!Array.isArray(grads)) throw new Error(`${this.className}.step: grads must be an array of Float32Array`);
    if (grads.length !== slots.length) throw new Error(`${this.className}.step: got ${grads.length} gradients for ${slots.length} parameters`);
    grads.forEach((g, i) => {
      if (g == null) return;
      if (!(g instanceof Float32Array)) throw new Error(`${this.className}.step: gradient ${i} must be a Float32Array, got ${typeName(g)}`);
      const n = slots[i].length;
      if (g.length !== n) throw new Error(`${this.className}.step: gradient ${i} has ${g.length} elements but its parameter has ${n}`);
    });
  }

  /**
   * Points parameter `index` at another array of the same length (its state, step count and
   * overrides stay): lets an adapter step a tensor's current storage in place instead of a copy.
   */
  replaceParam(index: number, param: Float32Array): void {
    this.idle('replaceParam');
    const slot = this.book.slots[index];
    if (!slot) throw new Error(`${this.className}.replaceParam: no parameter ${index}`);
    if (!(param instanceof Float32Array) || param.length !== slot.length) {
      throw new Error(`${this.className}.replaceParam: parameter ${index} needs a Float32Array of ${slot.length} elements`);
    }
    if (slot.param !== param && this.book.has(param)) throw new Error(`${this.className}.replaceParam: the array is already another parameter`);
    this.book.replace(slot, param);
  }

  /** The update job of one tensor (null for an empty one or no gradient); advances its step count. */
  private prepareJob(slot: Slot, grad: Float32Array | null | undefined, kernel: CpuKernel): (UpdateJob & { maxUnorm: number }) | null {
    if (grad == null || slot.length === 0) return null;
    const h = this.book.optionsFor(slot);
    slot.state ??= this.book.createStores(slot, h);
    // The kernel may keep states in its own memory (the WebAssembly kernel: no copy per step).
    const states = (slot.state = kernel.placeStates?.(slot.state) ?? slot.state);
    const t = this.book.advance(slot, h);
    let gradScale = 1;
    if (t.percentile < 100) {
      slot.clip ??= new NormHistory();
      gradScale = slot.clip.record(finiteNorm(grad), t.percentile);
    }
    return {
      rule: this.rule,
      param: slot.param,
      grad,
      states,
      coefficients: t.coefficients,
      gradScale,
      // A restored checkpoint's 8-bit states keep the block size they were written with.
      blockSize: states.map((s) => codecOf(s).blockSizeOf(s)).find((b) => b !== null) ?? this.book.storageFor(slot, h).blockSize,
      maxUnorm: t.maxUnorm,
    };
  }

  /** Bytes of optimizer state held now (codes, absmax and float32 states). */
  stateBytes(): number {
    let bytes = 0;
    for (const s of this.book.slots) for (const st of s.state ?? []) bytes += st.bytes;
    return bytes;
  }

  /** Steps taken on parameter `index`. */
  stepCount(index = 0): number {
    return this.book.slots[index]?.step ?? 0;
  }

  /** A self-describing checkpoint of all state (copies; later steps do not change it). */
  stateDict(): StateDict {
    this.idle('stateDict');
    return this.book.stateDict(this.book.slots.map(storedParts));
  }

  /**
   * Restores a checkpoint written by `stateDict()` of the same optimizer over parameters of the
   * same shapes. Everything is validated first; on any error nothing changes.
   */
  loadStateDict(dict: StateDict): void {
    this.idle('loadStateDict');
    const parsed = this.book.parse(dict);
    this.book.commit(parsed, (slot, t) => {
      slot.state = t.states;
      slot.clip = t.clip;
    });
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
