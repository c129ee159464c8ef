/**
 * The CPU optimizer over Float32Arrays: a `ParamBook` (./book.ts: groups, options, overrides,
 * step counts, checkpoints) plus what only the CPU does: states as StateStores, percentile
 * clipping and trust ratios computed here, and the loops handed to a kernel (./kernel.ts; the
 * entry points inject the default one). The maths of each optimizer lives in its rule (./rules).
 */
import { ParamBook, storedParts, type OptimizerIdentity, type ParamSlot } from './book.js';
import { finiteNorm, NormHistory } from './clipping.js';
import { createCpuKernel, type CpuKernel, type DirectionNorms, type UpdateJob } from './kernel.js';
import { findOverlap } from './aliasing.js';
import type { Hyper, UpdateRule } from './rule.js';
import { codecOf } from '../codecs/index.js';
import type { StateStore } from './state.js';
import type { StateDict, TensorStateDict } from './statedict.js';

export type { OptimizerIdentity } from './book.js';

/** Options common to every optimizer. Rule-specific ones (betas, eps, ...) extend this. */
export interface BaseOptions {
  /** Learning rate, finite, in [0, 1e4]. Default: 1e-3 (Adam, AdamW, SGD, LAMB, LARS, AdEMAMix, RAdam), 1e-2 (RMSprop, Adagrad), 1e-4 (Lion). */
  lr?: number;
  /**
   * Weight decay, finite, at least 0, with lr·weightDecay at most 1. Default 0 (AdamW and AdEMAMix: 1e-2).
   * Decoupled (p *= 1 - lr·weightDecay) in Adam, AdamW, Lion, LAMB and AdEMAMix; L2 (g += weightDecay·p) in SGD, RMSprop, Adagrad, LARS and RAdam.
   */
  weightDecay?: number;
  /** State precision: 8 block-wise 8-bit, 4 block-wise 4-bit, 32 float32. Default: 8 for the *8bit classes, 4 for the *4bit classes, 32 for their float32 twins. Fixed once a tensor has state. */
  optimBits?: 4 | 8 | 32;
  /** Elements per quantization block, a power of two in [64, 4096]. Default: the state codec's (256 in 8 bits, 128 in 4 bits). */
  blockSize?: number;
  /** Tensors with fewer elements keep float32 state (in 8 and in 4 bits); a non-negative integer. Default 4096. */
  min8bitSize?: number;
  /** Clips a gradient whose norm exceeds this percentile of the tensor's last 100 gradient norms: an integer in [1, 100]; 100 (default) is off. */
  percentileClipping?: number;
  /**
   * Accepts `optimBits: 4` for a rule whose 4-bit states were measured not to keep parity with
   * float32 (SGD, Lion, LAMB, LARS, RAdam: docs/quality-4bit.md); without it such an optimizer is refused
   * at construction. Default false.
   */
  allow4bitWithoutParity?: boolean;
}

/** A parameter group: its parameters plus options that override the optimizer's for them. */
export type ParamGroup<O> = { params: Float32Array[] } & O;
/** What a constructor takes: parameters, or parameter groups. */
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

/** One tensor of a step after checks and allocation, before anything is committed. */
interface PlannedJob {
  slot: Slot;
  grad: Float32Array;
  options: Hyper;
  states: StateStore[];
  blockSize: number;
}

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

/** The CPU optimizer over Float32Arrays that every class (Adam8bit, Lion4bit, ...) extends: groups, overrides, checkpoints, steps through a CPU kernel. */
export class Optimizer<O extends BaseOptions = BaseOptions> {
  /** The update rule (its maths: src/optim/rules). */
  readonly rule: UpdateRule;
  /** The class's name, e.g. 'Adam8bit' (written into checkpoints). */
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
    this.refuseAliasing(this.book.params, 'the constructor');
  }

  /** Parameters that share memory would be updated twice, each from a state of its own: refused. */
  private refuseAliasing(params: readonly Float32Array[], where: string, key?: (a: ArrayBufferView) => object | undefined): void {
    const hit = findOverlap(params.map((view, i) => ({ view, what: `parameter ${i}` })), key);
    if (hit) throw new Error(`${this.className} (${where}): ${hit[0]} and ${hit[1]} share memory (views of one buffer that overlap); each parameter needs memory of its own`);
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
    this.refuseAliasing([...this.book.params, param], 'addParam');
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
   * skips that parameter (its values, state and step count stay). A step is transactional
   * (docs/reliability.md, invariant 1): every gradient and parameter is checked and every
   * allocation made before any parameter, state or step count changes, so a step that throws
   * leaves the optimizer exactly as it was.
   */
  async step(grads: (Float32Array | null | undefined)[]): Promise<void> {
    // The list is read once, now: changing the caller's array later does not change this step.
    const list = this.checkGrads(grads);
    // Steps run one at a time, in call order: a step called before the previous one finished
    // (not awaited) waits for it instead of interleaving with it tensor by tensor.
    const previous = this.running;
    const run = (async () => {
      if (previous) await previous.catch(() => undefined);
      const kernel = this.cpuKernel;
      // Checked again when the step runs: buffers may have been resized or detached meanwhile.
      for (const planned of this.planStep(list, kernel)) {
        const job = this.startJob(planned);
        // A synchronous kernel's result is not awaited, so no other code runs between tensors.
        if (job.maxUnorm > 0) {
          const norms = kernel.directionNorms(job);
          applyTrustRatio(job, norms instanceof Promise ? await norms : norms);
        }
        const done = kernel.update(job);
        if (done instanceof Promise) await done;
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
    const list = this.checkGrads(grads);
    const kernel = this.cpuKernel;
    for (const planned of this.planStep(list, kernel)) {
      const job = this.startJob(planned);
      if (job.maxUnorm > 0) applyTrustRatio(job, notPromise(kernel.directionNorms(job), kernel.name));
      notPromise(kernel.update(job), kernel.name);
    }
  }

  /** The gradient list, read once and checked: an array of one Float32Array (or null) per parameter, no holes. */
  private checkGrads(grads: (Float32Array | null | undefined)[]): (Float32Array | null)[] {
    const slots = this.book.slots;
    if (!Array.isArray(grads)) throw new Error(`${this.className}.step: grads must be an array of Float32Array`);
    if (grads.length !== slots.length) throw new Error(`${this.className}.step: got ${grads.length} gradients for ${slots.length} parameters`);
    const list: (Float32Array | null)[] = [];
    for (let i = 0; i < slots.length; i++) {
      // A hole is not a skip: forEach and map pass over it silently, so it is refused here.
      if (!Object.hasOwn(grads, i)) throw new Error(`${this.className}.step: gradient ${i} is missing (a hole in a sparse array); pass null to skip a parameter`);
      const g = grads[i];
      if (g != null && !(g instanceof Float32Array)) throw new Error(`${this.className}.step: gradient ${i} must be a Float32Array, got ${typeName(g)}`);
      list.push(g ?? null);
    }
    this.checkLengths(list);
    return list;
  }

  /** Every stepped parameter and its gradient have the parameter's length (a resized or detached buffer does not). */
  private checkLengths(list: readonly (Float32Array | null)[]): void {
    this.book.slots.forEach((slot, i) => {
      const g = list[i];
      if (g === null) return;
      if (slot.param.length !== slot.length) {
        throw new Error(`${this.className}.step: parameter ${i} has ${slot.param.length} elements but had ${slot.length} (its buffer was resized or detached); give it back its length, or replaceParam() with an array of ${slot.length}`);
      }
      if (g.length !== slot.length) {
        throw new Error(`${this.className}.step: gradient ${i} has ${g.length} elements but its parameter has ${slot.length}${g.byteLength === 0 && g.length === 0 ? ' (a detached buffer?)' : ''}`);
      }
    });
  }

  /**
   * Checks and reserves everything a step needs, changing nothing: lengths (again, at run
   * time), memory shared by parameters or by a gradient and a parameter, new states, states
   * placed in the kernel's memory and the kernel's own buffers. Throws before the first change.
   */
  private planStep(list: readonly (Float32Array | null)[], kernel: CpuKernel): PlannedJob[] {
    this.checkLengths(list);
    const key = kernel.aliasKey?.bind(kernel);
    const params = this.book.params;
    this.refuseAliasing(params, 'step', key);
    // A gradient sharing memory with a parameter would change while the step writes it.
    const views = params.map((view, i) => ({ view, what: `parameter ${i}` }));
    list.forEach((g, i) => {
      if (g === null || g.length === 0) return;
      const hit = findOverlap([...views, { view: g, what: `gradient ${i}` }], key);
      if (hit) throw new Error(`${this.className}.step: ${hit[1]} shares memory with ${hit[0]}; pass a gradient in memory of its own (a copy)`);
    });
    const planned: PlannedJob[] = [];
    for (const slot of this.book.slots) {
      const grad = list[slot.index];
      if (grad === null || slot.length === 0) continue;
      const options = this.book.optionsFor(slot);
      const fresh = slot.state ?? this.book.createStores(slot, options);
      // The kernel may keep states in its own memory (the WebAssembly kernel: no copy per step).
      const states = kernel.placeStates?.(fresh) ?? fresh;
      // A restored checkpoint's 8-bit states keep the block size they were written with.
      const blockSize = states.map((s) => codecOf(s).blockSizeOf(s)).find((b) => b !== null) ?? this.book.storageFor(slot, options).blockSize;
      planned.push({ slot, grad, options, states, blockSize });
    }
    kernel.reserve?.(planned.map((p) => ({ rule: this.rule, param: p.slot.param, grad: p.grad, states: p.states, blockSize: p.blockSize, norms: this.rule.usesTrustRatio === true })));
    return planned;
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
    this.refuseAliasing(this.book.params.map((p, i) => (i === index ? param : p)), 'replaceParam');
    this.book.replace(slot, param);
  }

  /** Commits one planned tensor (its states, one more step, its clipping history) and returns its job. */
  private startJob({ slot, grad, options, states, blockSize }: PlannedJob): UpdateJob & { maxUnorm: number } {
    slot.state = states;
    const t = this.book.advance(slot, options);
    let gradScale = 1;
    if (t.percentile < 100) {
      slot.clip ??= new NormHistory();
      gradScale = slot.clip.record(finiteNorm(grad), t.percentile);
    }
    return { rule: this.rule, param: slot.param, grad, states, coefficients: t.coefficients, gradScale, blockSize, maxUnorm: t.maxUnorm };
  }

  /**
   * Frees parameter `index`'s state and clipping history and zeroes its step count; its slot
   * stays, so no index moves. For an adapter whose parameter is gone for good (a disposed tfjs
   * variable): the stores are dropped here, kernel memory holding them is released when they are
   * collected.
   */
  releaseState(index: number): void {
    this.idle('releaseState');
    const slot = this.book.slots[index];
    if (!slot) throw new Error(`${this.className}.releaseState: no parameter ${index}`);
    slot.state = null;
    slot.clip = null;
    slot.step = 0;
  }

  /** Bytes of optimizer state held now (codes, absmax and float32 states); of parameter `index` only when given. */
  stateBytes(index?: number): number {
    let bytes = 0;
    for (const s of index === undefined ? this.book.slots : this.book.slots.slice(index, index + 1)) for (const st of s.state ?? []) bytes += st.bytes;
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
