/**
 * The tfjs adapter: a `tf.Optimizer` whose variables are all stepped by ONE bitopt engine
 * (8-bit block-wise or float32 state): the CPU optimizer, or the WebGPU engine on tfjs's webgpu
 * backend (./engine.ts). A variable joins the engine at its first step, keyed by its name; each
 * `applyGradients` is one engine step. `getWeights`/`setWeights` carry the state exactly, one
 * core state dict per variable (see ./weights.ts). Options and checkpoints are validated by the
 * core's bookkeeping functions (src/optim/book.ts), with no engine needed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensor } from '@tensorflow/tfjs-core/dist/tensor_types.js';
import { paramStateDict, parseStateDict, validateOptions } from '../optim/book.js';
import { defaultOptions, validateMerged } from '../optim/options.js';
import { describeOptimizerClass, type BaseOptions, type OptimizerDescription } from '../optim/optimizer.js';
import type { Hyper } from '../optim/rule.js';
import { createEngine, type CoreClass, type JoinInit, type StepItem, type TfjsEngine } from './engine.js';
import { optimOverrideOf } from './overrides.js';
import { fromTfjsKeys, readName, tfjsNamesFor, writeName, type TfjsName } from './tfjs-names.js';
import { decodeVariableStates, encodeVariableState, type VariableState } from './weights.js';
import { savedClassName } from './saved-name.js';

interface Slot {
  /** The variable's index in the engine. */
  index: number;
  shape: number[];
  /** The variable object itself: a new variable under a disposed one's name is not the same parameter. */
  variable: tf.Variable;
  /** The variable was disposed and its engine state freed (the slot stays: its name is still refused). */
  released?: boolean;
}

const shapeText = (s: readonly number[]) => `[${s.join(',')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** The base of bitopt's tfjs optimizers: a `tf.Optimizer` whose variables are stepped by a bitopt engine (CPU, or WebGPU on tfjs's webgpu backend). */
export abstract class BitoptOptimizer<O extends BaseOptions = BaseOptions> extends tf.Optimizer {
  /** Options as given (the core fills in defaults); what getConfig returns. */
  protected options: O;
  /** The core class's rule, name and defaults. */
  private readonly identity: OptimizerDescription;
  /** The engine stepping every variable; created at the first step (on that step's backend). */
  private engine: TfjsEngine | null = null;
  private readonly slots = new Map<string, Slot>();
  private readonly overrides = new Map<string, Partial<O>>();
  /** States restored by setWeights, bound to variables at their first step. */
  private pending: VariableState[] | null = null;
  /** Group options restored by setWeights, applied to the next engine. */
  private restoredOptions: Hyper | null = null;

  /** tf.Optimizer's duck-typed instanceof would accept any optimizer: use the prototype chain. */
  static override [Symbol.hasInstance](instance: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, instance);
  }

  /** tfjs's names of this class's hyperparameters (./tfjs-names.ts). */
  private readonly tfjsNames: readonly TfjsName[];

  /**
   * `options`: bitopt's options (`{ lr, betas, eps, ... }`), or tfjs's keys for them
   * (`{ learningRate, beta1, beta2, epsilon, momentum }`, as a tfjs config has them), or both.
   */
  protected constructor(
    private readonly core: CoreClass<O>,
    options: O = {} as O,
  ) {
    super();
    this.identity = describeOptimizerClass(core);
    const defaults = defaultOptions(this.identity.rule, this.identity.classDefaults);
    this.tfjsNames = tfjsNamesFor(defaults);
    const bitoptOptions = this.fromTfjs(options, defaults);
    this.check(bitoptOptions); // unknown names, ranges: as the core optimizer would
    this.options = { ...bitoptOptions } as unknown as O;
    // tfjs optimizers expose their hyperparameters as plain properties (`opt.beta1 = 0.5`).
    for (const name of this.tfjsNames) {
      if (name.key === 'learningRate') continue; // an accessor of the class
      Object.defineProperty(this, name.key, {
        get: () => readName(name, this.inForce()),
        set: (value: unknown) => this.setOptions(writeName(name, value, this.inForce()) as Partial<O>),
        enumerable: true,
        configurable: false,
      });
    }
  }

  /** Options with tfjs's keys turned into bitopt's (and tfjs's `useNesterov: false` dropped). */
  private fromTfjs(options: unknown, defaults: Hyper): Record<string, unknown> {
    const who = this.identity.className;
    if (options === null || typeof options !== 'object' || Array.isArray(options)) return options as Record<string, unknown>; // check() names the problem
    const { useNesterov, ...rest } = options as Record<string, unknown>;
    if (useNesterov !== undefined) {
      if (!('momentum' in defaults)) throw new Error(`${who}: unknown option 'useNesterov' (only momentum SGD has it)`);
      if (useNesterov !== false) {
        throw new Error(`${who}: useNesterov ${JSON.stringify(useNesterov)} is not supported: bitopt's SGD rule has no Nesterov variant (src/optim/rules/sgd.ts); use useNesterov false, or tf.train.momentum(lr, momentum, true)`);
      }
    }
    return fromTfjsKeys(rest, this.tfjsNames, defaults, who);
  }

  /** The options in force for the optimizer (defaults, then those given). */
  private inForce(): Hyper {
    return { ...defaultOptions(this.identity.rule, this.identity.classDefaults), ...(this.options as unknown as Hyper) };
  }

  /** e.g. 'bitopt.Adam8bit' (the class's static className: in messages and state headers). */
  private get name(): string {
    return (this.constructor as unknown as { className: string }).className;
  }

  /** What `model.save` records: the class name and how to load it (./saved-name.ts). */
  override getClassName(): string {
    return savedClassName(this.name);
  }

  /** Validates options as the core class does (its messages); `options` are all those in force (the defaults fill in the rest). */
  private check(options: unknown): Hyper {
    const { rule, classDefaults, className } = this.identity;
    const h = validateOptions(rule, classDefaults, options, className);
    validateMerged(rule, { ...defaultOptions(rule, classDefaults), ...h }, className);
    return h;
  }

  /** tfjs's `learningRate`: assigning it (a schedule in `onEpochBegin`) takes effect at the next step; a bad value throws and changes nothing. */
  get learningRate(): number {
    return this.inForce().lr as number;
  }

  /** Sets the learning rate of every variable from the next step (validated: a bad value throws and changes nothing). */
  set learningRate(lr: number) {
    this.setOptions({ lr } as Partial<O>);
  }

  /** Changes options of every variable, e.g. `{ lr: 1e-4 }` for a schedule. */
  setOptions(options: Partial<O>): void {
    this.check({ ...this.options, ...options });
    this.engine?.setOptions(options);
    this.options = { ...this.options, ...options };
    // Set after setWeights and before the next step (a schedule right after loading): these win over the restored ones.
    if (this.restoredOptions) this.restoredOptions = { ...this.restoredOptions, ...(options as unknown as Hyper) };
  }

  /** Sets the learning rate of every variable from the next step (same as assigning `learningRate`). */
  setLearningRate(lr: number): void {
    this.setOptions({ lr } as Partial<O>);
  }

  /** Per-variable options, e.g. `{ optimBits: 32 }`, set before the variable's first step. */
  overrideConfig(variable: tf.Variable | string, options: Partial<O>): void {
    const name = typeof variable === 'string' ? variable : variable.name;
    if (this.slots.has(name)) throw new Error(`${this.name}.overrideConfig: variable '${name}' already has optimizer state (set overrides before its first step)`);
    this.check({ ...this.options, ...this.overrides.get(name), ...options });
    this.overrides.set(name, { ...this.overrides.get(name), ...options });
  }

  private disposed = false;

  private checkAlive(what: string): void {
    if (this.disposed) throw new Error(`${this.name}.${what}: the optimizer was disposed (its state is gone); create a new one`);
  }

  /**
   * Frees the engine state of variables disposed since the last call (issue 13), at the next
   * entry that would otherwise skip them. Their slots stay, so a new variable under one's name is
   * still refused; the other variables' state and step counts are untouched.
   */
  private releaseDisposed(): void {
    if (!this.engine) return;
    for (const s of this.slots.values()) {
      if (s.released || !s.variable.isDisposed) continue;
      this.engine.release(s.index);
      s.released = true;
    }
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    this.checkAlive('applyGradients');
    this.releaseDisposed();
    const list = Array.isArray(variableGradients)
      ? variableGradients
      : Object.keys(variableGradients).map((name) => ({ name, tensor: variableGradients[name] }));
    // Check everything before any variable changes.
    const work: { name: string; variable: tf.Variable; grad: tf.Tensor }[] = [];
    for (const { name, tensor: grad } of list) {
      if (grad == null) continue;
      // Duck-typed: a tensor from another copy of tfjs-core fails instanceof.
      if (typeof grad !== 'object' || typeof (grad as tf.Tensor).isDisposed !== 'boolean' || !('dataId' in grad)) throw new Error(`${this.name}.applyGradients: the gradient of '${name}' must be a tf.Tensor, got ${typeof grad}`);
      // Read only when the step runs, after other variables may have joined or moved: refused now.
      if (grad.isDisposed) throw new Error(`${this.name}.applyGradients: the gradient of '${name}' was disposed`);
      const variable = tf.engine().registeredVariables[name];
      if (!variable) throw new Error(`${this.name}.applyGradients: no variable named '${name}'`);
      if (variable.dtype !== 'float32') {
        throw new Error(`${this.name}.applyGradients: variable '${name}' has dtype ${variable.dtype}; bitopt optimizers update float32 variables only (mixed dtypes)`);
      }
      if (grad.dtype !== 'float32') throw new Error(`${this.name}.applyGradients: the gradient of '${name}' has dtype ${grad.dtype}, expected float32 (mixed dtypes)`);
      const slot = this.slots.get(name);
      if (slot && !sameShape(slot.shape, variable.shape)) {
        throw new Error(`${this.name}.applyGradients: variable '${name}' changed shape from ${shapeText(slot.shape)} to ${shapeText(variable.shape)} since its optimizer state was created`);
      }
      if (slot && slot.variable !== variable) {
        throw new Error(`${this.name}.applyGradients: '${name}' is a new variable under the name of one this optimizer has state for (the old one was disposed or replaced); its state is not the new variable's: use a new optimizer or another name`);
      }
      if (!sameShape(grad.shape, variable.shape)) {
        throw new Error(`${this.name}.applyGradients: the gradient of '${name}' has shape ${shapeText(grad.shape)} but the variable has ${shapeText(variable.shape)}`);
      }
      work.push({ name, variable, grad });
    }
    const unusable = this.engine?.unusableHere();
    if (unusable) throw new Error(`${this.name}.applyGradients: ${unusable}`);
    const fresh = [...new Map(work.filter((w) => !this.slots.has(w.name)).map((w) => [w.name, w])).values()];
    const joins = this.joinsFor(fresh);
    if (work.length) this.engine ??= this.createEngine();
    for (const { name, variable, init } of joins) {
      this.slots.set(name, { index: this.engine!.join(variable, init), shape: [...variable.shape], variable });
    }
    // One engine step per call; a variable named twice is stepped again in a further step.
    for (let rest = work; rest.length; ) {
      const seen = new Set<string>();
      const now = rest.filter((w) => !seen.has(w.name) && seen.add(w.name));
      rest = rest.filter((w) => !now.includes(w));
      const items: StepItem[] = now.map((w) => ({ index: this.slots.get(w.name)!.index, variable: w.variable, grad: w.grad }));
      tf.tidy(() => this.engine!.step(items));
    }
    // A call whose gradients are all null stepped nothing, so it is not an iteration.
    if (work.length) this.incrementIterations();
  }

  private createEngine(): TfjsEngine {
    const engine = createEngine(this.core, this.options);
    if (this.restoredOptions) engine.setOptions(this.restoredOptions);
    this.restoredOptions = null;
    return engine;
  }

  /**
   * How each variable seen for the first time joins the engine: its override options (validated
   * now), or the state restored by setWeights with that state's override.
   */
  private joinsFor(fresh: { name: string; variable: tf.Variable }[]): { name: string; variable: tf.Variable; init: JoinInit }[] {
    const restored = this.bindRestored(fresh);
    return fresh.map(({ name, variable }) => {
      const st = restored.get(name);
      if (st) {
        const o = st.dict.overrides?.find((x) => x.param === 0);
        return { name, variable, init: { state: st.dict.tensors[0], ...(o ? { override: o.options } : {}) } };
      }
      const override = { ...optimOverrideOf(variable), ...this.overrides.get(name) };
      if (!Object.keys(override).length) return { name, variable, init: {} };
      try {
        this.check(override);
      } catch (e) {
        throw new Error(`${this.name}.applyGradients: the options registered for variable '${name}': ${(e as Error).message}`);
      }
      return { name, variable, init: { override } };
    });
  }

  /** Matches states restored by setWeights to variables seen for the first time: by name, else by order. */
  private bindRestored(fresh: { name: string; variable: tf.Variable }[]): Map<string, VariableState> {
    const out = new Map<string, VariableState>();
    const pending = this.pending;
    if (!pending || fresh.length === 0) return out;
    const names = new Set(pending.map((p) => p.name));
    const byName = fresh.every((f) => names.has(f.name));
    if (!byName && pending.length !== fresh.length) {
      throw new Error(
        `${this.name}: the restored optimizer state is for ${pending.length} variables (${pending.map((p) => p.name).join(', ')}) ` +
          `but this step trains ${fresh.length} new variables (${fresh.map((f) => f.name).join(', ')}): optimizer weights restored into the wrong model?`,
      );
    }
    fresh.forEach((f, i) => {
      const st = byName ? pending.find((p) => p.name === f.name)! : pending[i];
      if (!sameShape(st.shape, f.variable.shape)) {
        throw new Error(
          `${this.name}: the restored optimizer state '${st.name}' is for shape ${shapeText(st.shape)} but variable '${f.name}' has shape ${shapeText(f.variable.shape)}: optimizer weights restored into the wrong model?`,
        );
      }
      out.set(f.name, st);
    });
    const left = byName ? pending.filter((p) => !fresh.some((f) => f.name === p.name)) : [];
    this.pending = left.length ? left : null;
    return out;
  }

  /** Bytes of optimizer state over all live variables (8-bit codes + absmax, float32 states); a disposed variable's state is freed here, not counted. */
  stateBytes(): number {
    this.releaseDisposed();
    let bytes = 0;
    if (this.engine) for (const s of this.slots.values()) if (!s.variable.isDisposed) bytes += this.engine.stateBytes(s.index);
    return bytes;
  }

  /** Steps taken on `variable` (0 before its first, and once it is disposed: its state is freed). */
  stepCount(variable: tf.Variable | string): number {
    this.releaseDisposed();
    const slot = this.slots.get(typeof variable === 'string' ? variable : variable.name);
    return slot && this.engine ? this.engine.stepCount(slot.index) : 0;
  }

  /** The optimizer state as tfjs weights: 'iter', then one weight per variable holding its exact state (codes, absmax, step), for `model.save` and `setWeights`. */
  override async getWeights(): Promise<NamedTensor[]> {
    this.checkAlive('getWeights');
    this.releaseDisposed();
    const out = [await this.saveIterations()];
    // A disposed variable's state belongs to no model any more (issue 13): it is not saved.
    const live = [...this.slots].filter(([, s]) => !s.variable.isDisposed);
    if (this.engine && live.length) {
      const dict = await this.engine.stateDict();
      for (const [name, s] of live) out.push(...encodeVariableState({ name, shape: s.shape, optimizer: this.name, dict: paramStateDict(dict, s.index) }));
    }
    for (const p of this.pending ?? []) out.push(...encodeVariableState(p));
    return out;
  }

  /** Replaces all state with weights from `getWeights` (of the same class); bound at each variable's next step. */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    this.checkAlive('setWeights');
    if (!Array.isArray(weightValues) || weightValues.length === 0 || weightValues[0]?.name !== 'iter') {
      throw new Error(`${this.name}.setWeights: expected the weights of a bitopt optimizer's getWeights() (first 'iter', then per-variable state)`);
    }
    const states = await decodeVariableStates(weightValues.slice(1));
    let restoredOptions: Hyper = {};
    for (const st of states) {
      if (st.optimizer !== this.name) throw new Error(`${this.name}.setWeights: the state of '${st.name}' was written by ${st.optimizer}, this optimizer is ${this.name}`);
      const length = st.shape.reduce((a, b) => a * b, 1);
      const { rule, className, classDefaults } = this.identity;
      try {
        // Validates completely (format, class, options, overrides, every state) without an optimizer.
        const parsed = parseStateDict(st.dict, { rule, className, classDefaults, groupSizes: [1], lengths: [length] }, `${className}.loadStateDict`);
        restoredOptions = { ...restoredOptions, ...parsed.groupOptions[0] };
      } catch (e) {
        throw new Error(`${this.name}.setWeights: state of '${st.name}': ${(e as Error).message}`);
      }
    }
    await this.extractIterations(weightValues);
    this.engine?.dispose();
    this.engine = null;
    this.slots.clear();
    this.pending = states.length ? states : null;
    // As the core's loadStateDict does, the state brings its options (a schedule's lr) back.
    this.restoredOptions = Object.keys(restoredOptions).length ? restoredOptions : null;
  }

  /**
   * Reads a config in tfjs's keys (`learningRate`, `beta1`, ...), bitopt's (`lr`, `betas`, ...)
   * or both. tfjs-layers adds `customObjects` to the config it deserializes: not an option.
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const { customObjects: _ignored, ...options } = config;
    return new cls(options);
  }

  /**
   * tfjs's keys with the values in force (`{ learningRate, beta1, beta2, epsilon }` for Adam,
   * `{ learningRate, momentum }` for SGD), then bitopt's other options as given
   * (`weightDecay`, `blockSize`, `optimBits`, ...).
   */
  override getConfig(): tf.serialization.ConfigDict {
    const h = this.inForce();
    const config: Record<string, unknown> = {};
    for (const name of this.tfjsNames) config[name.key] = readName(name, h);
    const named = new Set(this.tfjsNames.map((n) => n.option));
    for (const [k, v] of Object.entries(this.options)) if (!named.has(k)) config[k] = v;
    return JSON.parse(JSON.stringify(config)) as tf.serialization.ConfigDict;
  }

  override dispose(): void {
    this.disposed = true;
    this.engine?.dispose();
    this.engine = null;
    this.slots.clear();
    super.dispose();
  }
}
