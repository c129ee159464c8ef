/**
 * The bookkeeping every optimizer engine shares, apart from where its states live: parameter
 * groups, option resolution (class defaults → group → per-parameter override) and validation
 * (./options.ts), storage options fixed once a parameter has state, step counts, clipping
 * history handles, and the checkpoint (StateDict) assembled and parsed.
 *
 * `ParamBook<P, S, C>` is generic over the engine's handles: P the parameter (a Float32Array on
 * the CPU, a GpuTensor on WebGPU), S a tensor's state (StateStore[] on the CPU, GPU buffers on
 * WebGPU), C its clipping history (a NormHistory on the CPU, a GPU buffer on WebGPU). Engines
 * (src/optim/optimizer.ts, src/kernels/webgpu/optimizer.ts) hold one and keep only their loops;
 * the tfjs adapter validates with the plain functions here (`validateOptions`, `parseStateDict`)
 * before any engine exists.
 */
import type { NormHistory } from './clipping.js';
import { defaultOptions, STORAGE_OPTIONS, validateMerged, validateOptions } from './options.js';
import { num, type Coefficients, type Hyper, type UpdateRule } from './rule.js';
import { codecForBits, float32Codec } from '../codecs/index.js';
import { createState, type StateFormat, type StateStore } from './state.js';
import {
  checkStateDictVersion,
  parseTensorState,
  STATE_DICT_FORMAT,
  STATE_DICT_VERSION,
  storeToEntry,
  type StateDict,
  type TensorStateDict,
} from './statedict.js';

export { validateOptions };

/** Which class an optimizer is and what its defaults add to the rule's. */
export interface OptimizerIdentity {
  /** The class's name, e.g. 'Adam8bit' (in messages and checkpoints). */
  className: string;
  /** What the class adds to the rule's defaults, e.g. `{ optimBits: 8 }`. */
  defaults?: Hyper;
}

/** One parameter's record. */
export interface ParamSlot<P, S = StateStore[], C = NormHistory> {
  /** Position in the flat parameter list (the order of gradients and of the checkpoint). */
  readonly index: number;
  param: P;
  readonly length: number;
  readonly group: number;
  /** Steps taken. */
  step: number;
  /** The engine's state of this tensor; null before its first step. */
  state: S | null;
  /** Percentile-clipping history; null until clipping first runs. */
  clip: C | null;
}

/** A tensor's checkpoint entry as an engine reads it from its state (the book adds length and step). */
export type TensorParts = Pick<TensorStateDict, 'states' | 'clipHistory'>;

/** A validated checkpoint entry of one tensor: fresh stores, ready to install. */
export interface RestoredTensor {
  step: number;
  states: StateStore[] | null;
  clip: NormHistory | null;
}

/** A validated checkpoint. */
export interface ParsedStateDict {
  groupOptions: Hyper[];
  overrides: { param: number; options: Hyper }[];
  tensors: RestoredTensor[];
}

/** What a checkpoint must match. */
export interface CheckpointLayout {
  rule: UpdateRule;
  className: string;
  classDefaults?: Hyper;
  /** Parameters per group. */
  groupSizes: readonly number[];
  /** Elements of each parameter, in flat order. */
  lengths: readonly number[];
}

/** Options in force for one step of one tensor, and what the rule derives from them. */
export interface TensorStep {
  options: Hyper;
  /** The step number (from 1), already counted. */
  step: number;
  coefficients: Coefficients;
  /** Percentile clipping: 100 is off. */
  percentile: number;
  /** Trust-ratio clamp (LAMB, LARS); 0 when the rule has none or it is off. */
  maxUnorm: number;
}

/** How a tensor's state is stored. */
export interface StorageChoice {
  format: StateFormat;
  blockSize: number;
}

const who = (className: string, where?: string) => (where ? `${className} (${where})` : className);

export class ParamBook<P, S = StateStore[], C = NormHistory> {
  readonly rule: UpdateRule;
  readonly className: string;
  /** The class's own defaults (e.g. `{ optimBits: 8 }`). */
  readonly classDefaults: Hyper;
  /** Defaults after the constructor's options. */
  readonly defaults: Hyper;
  private readonly groups: { options: Hyper; slots: ParamSlot<P, S, C>[] }[] = [];
  private readonly list: ParamSlot<P, S, C>[] = [];
  private readonly byParam = new Map<P, ParamSlot<P, S, C>>();
  /** Per-parameter overrides, in the order they were first set. */
  private readonly overrides = new Map<ParamSlot<P, S, C>, Hyper>();

  constructor(rule: UpdateRule, identity: OptimizerIdentity, options: unknown) {
    this.rule = rule;
    this.className = identity.className;
    this.classDefaults = { ...identity.defaults };
    this.defaults = Object.freeze({ ...defaultOptions(rule, identity.defaults), ...this.check(options) });
    validateMerged(rule, this.defaults, this.className);
  }

  /** Validates options (names, ranges, the rule's checks); returns a frozen copy. */
  check(options: unknown, where?: string, ignore: readonly string[] = []): Hyper {
    return validateOptions(this.rule, this.classDefaults, options, who(this.className, where), ignore);
  }

  /** Adds a group with its own options (a `params` key is ignored); returns its index. */
  addGroup(options: unknown = {}): number {
    const h = this.check(options, `group ${this.groups.length}`, ['params']);
    validateMerged(this.rule, { ...this.defaults, ...h }, who(this.className, `group ${this.groups.length}`));
    this.groups.push({ options: h, slots: [] });
    return this.groups.length - 1;
  }

  get groupCount(): number {
    return this.groups.length;
  }

  /** The records of all parameters, in flat order. */
  get slots(): readonly ParamSlot<P, S, C>[] {
    return this.list;
  }

  get params(): P[] {
    return this.list.map((s) => s.param);
  }

  has(param: P): boolean {
    return this.byParam.has(param);
  }

  slotOf(param: P): ParamSlot<P, S, C> | undefined {
    return this.byParam.get(param);
  }

  /** Adds a parameter of `length` elements to `group`; its state comes at its first step. */
  add(param: P, length: number, group = 0): ParamSlot<P, S, C> {
    const g = this.groups[group];
    if (!g) throw new Error(`${this.className}: no parameter group ${group}`);
    if (this.byParam.has(param)) throw new Error(`${this.className}: the parameter is already in this optimizer`);
    if (!Number.isSafeInteger(length) || length < 0) throw new Error(`${this.className}: invalid parameter length ${String(length)}`);
    const slot: ParamSlot<P, S, C> = { index: this.list.length, param, length, group, step: 0, state: null, clip: null };
    this.list.push(slot);
    g.slots.push(slot);
    this.byParam.set(param, slot);
    return slot;
  }

  /**
   * A parameter joining after construction (e.g. a tfjs variable seen for the first time), with
   * optional override options and a checkpointed state (a state dict's tensor entry). Everything
   * is validated before the parameter is added; returns its record and the restored state for
   * the engine to install (null: state is created at its first step).
   */
  join(param: P, length: number, init: { group?: number; override?: unknown; state?: unknown } = {}): { slot: ParamSlot<P, S, C>; restored: RestoredTensor | null } {
    const group = init.group ?? 0;
    if (!this.groups[group]) throw new Error(`${this.className}: no parameter group ${group}`);
    const override = init.override === undefined ? null : this.check(init.override, `override of parameter ${this.list.length}`);
    if (override) validateMerged(this.rule, { ...this.defaults, ...this.groups[group].options, ...override }, who(this.className, `override of parameter ${this.list.length}`));
    const restored = init.state === undefined ? null : parseTensorState(init.state, this.rule, length, `tensor ${this.list.length}`);
    const slot = this.add(param, length, group);
    if (override && Object.keys(override).length) this.overrides.set(slot, override);
    if (restored) slot.step = restored.step;
    return { slot, restored };
  }

  /** Points a parameter at another handle (its state, step count and overrides stay). */
  replace(slot: ParamSlot<P, S, C>, param: P): void {
    if (slot.param === param) return;
    const other = this.byParam.get(param);
    if (other) throw new Error(`${this.className}: the new handle is already parameter ${other.index}`);
    this.byParam.delete(slot.param);
    slot.param = param;
    this.byParam.set(param, slot);
  }

  /** Group `index`'s options merged over the defaults. */
  groupOptions(index: number): Hyper {
    const g = this.groups[index];
    if (!g) throw new Error(`${this.className}: no parameter group ${index}`);
    return { ...this.defaults, ...g.options };
  }

  /** Changes options of group `index` (all groups when omitted). Storage options only before any of its parameters has state. */
  setOptions(options: unknown, index?: number): void {
    const h = this.check(options);
    if (index !== undefined && !(Number.isInteger(index) && index >= 0 && index < this.groups.length)) {
      throw new Error(`${this.className}: no parameter group ${typeof index === 'number' ? index : JSON.stringify(index)} (groups are numbered 0..${this.groups.length - 1})`);
    }
    const targets = index === undefined ? this.groups : [this.groups[index]];
    this.rejectStorageChange(h, targets.flatMap((g) => g.slots));
    // The options in force after the change, for every parameter it reaches, before anything changes.
    for (const g of targets) {
      for (const slot of [null, ...g.slots]) {
        validateMerged(this.rule, { ...this.defaults, ...g.options, ...h, ...(slot ? this.overrides.get(slot) : undefined) }, this.className);
      }
    }
    for (const g of targets) g.options = Object.freeze({ ...g.options, ...h });
  }

  /** Per-parameter options (merged over earlier ones). Storage options only before the parameter has state. */
  override(slot: ParamSlot<P, S, C>, options: unknown): void {
    const h = this.check(options);
    this.rejectStorageChange(h, [slot]);
    const merged = Object.freeze({ ...this.overrides.get(slot), ...h });
    validateMerged(this.rule, { ...this.defaults, ...this.groups[slot.group].options, ...merged }, this.className);
    this.overrides.set(slot, merged);
  }

  private rejectStorageChange(h: Hyper, slots: readonly ParamSlot<P, S, C>[]): void {
    const key = STORAGE_OPTIONS.find((k) => k in h);
    if (key && slots.some((s) => s.state !== null)) {
      throw new Error(`${this.className}: ${key} cannot change once a parameter has state (set it before the first step)`);
    }
  }

  /** Options in force for one parameter: defaults, then its group's, then its overrides. */
  optionsFor(slot: ParamSlot<P, S, C>): Hyper {
    return { ...this.defaults, ...this.groups[slot.group].options, ...this.overrides.get(slot) };
  }

  /** How a new state of this parameter is stored (its options decide: optimBits, min8bitSize, blockSize). */
  storageFor(slot: ParamSlot<P, S, C>, h: Hyper = this.optionsFor(slot)): StorageChoice {
    return storageChoice(slot.length, h);
  }

  /** Zero states of this parameter in the format its options choose (CPU stores). */
  createStores(slot: ParamSlot<P, S, C>, h: Hyper = this.optionsFor(slot)): StateStore[] {
    const { format, blockSize } = this.storageFor(slot, h);
    return this.rule.states.map((sign) => createState(format, sign, slot.length, blockSize));
  }

  /** Counts one step of this parameter and returns what the step needs (`options`: its `optionsFor`, when already at hand). */
  advance(slot: ParamSlot<P, S, C>, options: Hyper = this.optionsFor(slot)): TensorStep {
    slot.step += 1;
    return {
      options,
      step: slot.step,
      coefficients: this.rule.coefficients(options, slot.step),
      percentile: num(options, 'percentileClipping'),
      maxUnorm: this.rule.usesTrustRatio ? num(options, 'maxUnorm') : 0,
    };
  }

  /** The checkpoint: `parts[i]` is parameter i's states and clipping history as the engine read them. */
  stateDict(parts: readonly TensorParts[]): StateDict {
    if (parts.length !== this.list.length) throw new Error(`${this.className}.stateDict: got ${parts.length} tensor entries for ${this.list.length} parameters`);
    return {
      format: STATE_DICT_FORMAT,
      version: STATE_DICT_VERSION,
      optimizer: this.className,
      rule: this.rule.name,
      // Each group's options in force (the constructor's included): the checkpoint restores them all.
      groups: this.groups.map((g) => ({ options: plain({ ...this.defaults, ...g.options }), params: g.slots.map((s) => s.index) })),
      overrides: [...this.overrides].map(([s, o]) => ({ param: s.index, options: plain(o) })),
      tensors: this.list.map((s, i) => ({ length: s.length, step: s.step, states: parts[i].states, clipHistory: parts[i].clipHistory })),
    };
  }

  /** Validates a checkpoint against this optimizer (class, groups, shapes, every state); changes nothing. */
  parse(dict: unknown, whoLoads = `${this.className}.loadStateDict`): ParsedStateDict {
    return parseStateDict(dict, this.layout(), whoLoads);
  }

  /** What a checkpoint of this optimizer must match. */
  layout(): CheckpointLayout {
    return {
      rule: this.rule,
      className: this.className,
      classDefaults: this.classDefaults,
      groupSizes: this.groups.map((g) => g.slots.length),
      lengths: this.list.map((s) => s.length),
    };
  }

  /** Applies a parsed checkpoint: options, overrides and step counts here; `install` puts each tensor's state into the engine. */
  commit(parsed: ParsedStateDict, install: (slot: ParamSlot<P, S, C>, tensor: RestoredTensor) => void): void {
    parsed.groupOptions.forEach((o, gi) => (this.groups[gi].options = o));
    this.overrides.clear();
    for (const o of parsed.overrides) this.overrides.set(this.list[o.param], o.options);
    parsed.tensors.forEach((t, i) => {
      this.list[i].step = t.step;
      install(this.list[i], t);
    });
  }
}

/**
 * How a new state of a tensor of `length` elements is stored under options `h`: tensors below
 * min8bitSize keep float32 state (in 8 and in 4 bits), the others take the codec optimBits
 * selects, in blocks of `blockSize` or, when the options give none, the codec's default.
 */
export function storageChoice(length: number, h: Hyper): StorageChoice {
  const codec = length >= num(h, 'min8bitSize') ? codecForBits(num(h, 'optimBits')) : float32Codec;
  return { format: codec.format, blockSize: h.blockSize === undefined ? codec.defaultBlockSize : num(h, 'blockSize') };
}

/** A CPU tensor's checkpoint entry: its stores through the state codecs, and its clipping history (copies). */
export function storedParts(slot: { state: StateStore[] | null; clip: NormHistory | null }): TensorParts {
  return {
    states: (slot.state ?? []).map(storeToEntry),
    clipHistory: slot.clip ? { norms: slot.clip.norms.slice(), count: slot.clip.count } : null,
  };
}

/**
 * Validates a checkpoint completely against `layout` (format, version, class, groups and their
 * options, overrides, each tensor through `parseTensorState`) and returns it parsed; throws
 * `<who>: <problem>` on the first problem. A plain function: no optimizer is needed.
 */
export function parseStateDict(dict: unknown, layout: CheckpointLayout, whoLoads: string): ParsedStateDict {
  const { rule, className, groupSizes, lengths } = layout;
  const check = (o: unknown, where: string) => validateOptions(rule, layout.classDefaults, o, `${className} (${where})`);
  if (dict === null || typeof dict !== 'object') throw new Error(`${whoLoads}: expected a state dict object`);
  const d = dict as Partial<StateDict>;
  if (d.format !== STATE_DICT_FORMAT) throw new Error(`${whoLoads}: not a bitopt optimizer state (format ${JSON.stringify(d.format)})`);
  checkStateDictVersion(d.version, whoLoads);
  if (d.rule !== rule.name || d.optimizer !== className) {
    throw new Error(`${whoLoads}: state dict is from ${String(d.optimizer)} (rule '${String(d.rule)}'), this optimizer is ${className} (rule '${rule.name}')`);
  }
  if (!Array.isArray(d.groups) || d.groups.length !== groupSizes.length) {
    throw new Error(`${whoLoads}: state dict has ${d.groups?.length} parameter groups, this optimizer has ${groupSizes.length}`);
  }
  if (!Array.isArray(d.tensors) || d.tensors.length !== lengths.length) {
    throw new Error(`${whoLoads}: state dict has ${d.tensors?.length} tensors, this optimizer has ${lengths.length} parameters`);
  }
  const groupOptions = d.groups.map((g, gi) => {
    if (!Array.isArray(g?.params) || g.params.length !== groupSizes[gi]) {
      throw new Error(`${whoLoads}: group ${gi} has ${g?.params?.length} parameters in the state dict, ${groupSizes[gi]} here`);
    }
    return check(g.options, `group ${gi}`);
  });
  if (d.overrides != null && !Array.isArray(d.overrides)) throw new Error(`${whoLoads}: overrides must be an array, got ${typeof d.overrides}`);
  const overrides = (d.overrides ?? []).map((o) => {
    const param = o?.param;
    if (!Number.isSafeInteger(param) || param < 0 || param >= lengths.length) throw new Error(`${whoLoads}: override for unknown parameter ${String(param)}`);
    return { param, options: check(o.options, `override of parameter ${param}`) };
  });
  const tensors = d.tensors.map((t, i) => parseTensorState(t, rule, lengths[i], `tensor ${i}`, d.version as number));
  return { groupOptions, overrides, tensors };
}

/** Parameter `index`'s part of `dict` as the checkpoint of a one-parameter optimizer (its group's options, its override). */
export function paramStateDict(dict: StateDict, index: number): StateDict {
  const group = dict.groups.find((g) => g.params.includes(index));
  return {
    format: dict.format,
    version: dict.version,
    optimizer: dict.optimizer,
    rule: dict.rule,
    groups: [{ options: group ? group.options : {}, params: [0] }],
    overrides: dict.overrides.filter((o) => o.param === index).map((o) => ({ param: 0, options: o.options })),
    tensors: [dict.tensors[index]],
  };
}

function plain(h: Hyper): Record<string, number | boolean | number[]> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Array.isArray(v) ? [...v] : (v as number | boolean)]));
}
