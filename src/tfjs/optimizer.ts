/**
 * The tfjs adapter: a `tf.Optimizer` whose every variable is stepped by a bitopt optimizer
 * (8-bit block-wise or float32 state). State is created on a variable's first step, keyed by
 * the variable's name; `getWeights`/`setWeights` carry it exactly (see ./weights.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensor } from '@tensorflow/tfjs-core/dist/tensor_types.js';
import type { BaseOptions } from '../optim/optimizer.js';
import { CpuStepper } from './cpu-stepper.js';
import { optimOverrideOf } from './overrides.js';
import type { CoreClass, VariableStepper } from './stepper.js';
import { decodeVariableStates, encodeVariableState, type VariableState } from './weights.js';
import { createWebgpuStepper } from './webgpu-stepper.js';

interface Slot {
  variable: tf.Variable;
  shape: number[];
  stepper: VariableStepper;
}

const shapeText = (s: readonly number[]) => `[${s.join(',')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export abstract class BitoptOptimizer<O extends BaseOptions = BaseOptions> extends tf.Optimizer {
  /** Options as given (the core fills in defaults); what getConfig returns. */
  protected options: O;
  private readonly slots = new Map<string, Slot>();
  private readonly overrides = new Map<string, Partial<O>>();
  /** States restored by setWeights, bound to variables at their first step. */
  private pending: VariableState[] | null = null;

  /** tf.Optimizer's duck-typed instanceof would accept any optimizer: use the prototype chain. */
  static override [Symbol.hasInstance](instance: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, instance);
  }

  protected constructor(
    private readonly core: CoreClass<O>,
    options: O = {} as O,
  ) {
    super();
    // Validates the options now (unknown names, ranges), as the core optimizer would.
    new core([new Float32Array(1)], options);
    this.options = { ...options };
  }

  /** e.g. 'bitopt.Adam8bit' (the name registered for serialization). */
  private get name(): string {
    return this.getClassName();
  }

  get learningRate(): number {
    return this.options.lr ?? (new this.core([new Float32Array(1)]).defaults.lr as number);
  }

  /** Changes options of every variable, e.g. `{ lr: 1e-4 }` for a schedule. */
  setOptions(options: Partial<O>): void {
    new this.core([new Float32Array(1)], { ...this.options, ...options }); // validates
    for (const s of this.slots.values()) s.stepper.setOptions(options);
    this.options = { ...this.options, ...options };
  }

  setLearningRate(lr: number): void {
    this.setOptions({ lr } as Partial<O>);
  }

  /** Per-variable options, e.g. `{ optimBits: 32 }`, set before the variable's first step. */
  overrideConfig(variable: tf.Variable | string, options: Partial<O>): void {
    const name = typeof variable === 'string' ? variable : variable.name;
    if (this.slots.has(name)) throw new Error(`${this.name}.overrideConfig: variable '${name}' already has optimizer state (set overrides before its first step)`);
    const probe = new Float32Array(1);
    new this.core([probe], this.options).overrideConfig(probe, options); // validates
    this.overrides.set(name, { ...this.overrides.get(name), ...options });
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const list = Array.isArray(variableGradients)
      ? variableGradients
      : Object.keys(variableGradients).map((name) => ({ name, tensor: variableGradients[name] }));
    // Check everything before any variable changes.
    const work: { name: string; variable: tf.Variable; grad: tf.Tensor }[] = [];
    for (const { name, tensor: grad } of list) {
      if (grad == null) continue;
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
      if (!sameShape(grad.shape, variable.shape)) {
        throw new Error(`${this.name}.applyGradients: the gradient of '${name}' has shape ${shapeText(grad.shape)} but the variable has ${shapeText(variable.shape)}`);
      }
      work.push({ name, variable, grad });
    }
    const fresh = work.filter((w) => !this.slots.has(w.name));
    const restored = this.bindRestored(fresh);
    for (const w of fresh) this.slots.set(w.name, this.createSlot(w.variable, restored.get(w.name)));
    tf.tidy(() => {
      for (const w of work) this.slots.get(w.name)!.stepper.step(w.variable, w.grad);
    });
    this.incrementIterations();
  }

  private createSlot(variable: tf.Variable, restored: VariableState | undefined): Slot {
    const override = { ...optimOverrideOf(variable), ...this.overrides.get(variable.name) } as Partial<O>;
    const args = [this.core, this.options, Object.keys(override).length ? override : undefined, variable] as const;
    const stepper = (tf.engine().backendName === 'webgpu' ? createWebgpuStepper(...args) : null) ?? new CpuStepper(...args);
    if (restored) stepper.loadStateDict(restored.dict);
    return { variable, shape: [...variable.shape], stepper };
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

  /** Bytes of optimizer state over all variables (8-bit codes + absmax, float32 states). */
  stateBytes(): number {
    let b = 0;
    for (const s of this.slots.values()) b += s.stepper.stateBytes();
    return b;
  }

  /** Steps taken on `variable` (0 before its first). */
  stepCount(variable: tf.Variable | string): number {
    return this.slots.get(typeof variable === 'string' ? variable : variable.name)?.stepper.stepCount() ?? 0;
  }

  override async getWeights(): Promise<NamedTensor[]> {
    const out = [await this.saveIterations()];
    for (const [name, s] of this.slots) {
      out.push(...encodeVariableState({ name, shape: s.shape, optimizer: this.name, dict: await s.stepper.stateDict() }));
    }
    for (const p of this.pending ?? []) out.push(...encodeVariableState(p));
    return out;
  }

  /** Replaces all state with weights from `getWeights` (of the same class); bound at each variable's next step. */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    if (!Array.isArray(weightValues) || weightValues.length === 0 || weightValues[0]?.name !== 'iter') {
      throw new Error(`${this.name}.setWeights: expected the weights of a bitopt optimizer's getWeights() (first 'iter', then per-variable state)`);
    }
    const states = await decodeVariableStates(weightValues.slice(1));
    for (const st of states) {
      if (st.optimizer !== this.name) throw new Error(`${this.name}.setWeights: the state of '${st.name}' was written by ${st.optimizer}, this optimizer is ${this.name}`);
      const length = st.shape.reduce((a, b) => a * b, 1);
      try {
        new this.core([new Float32Array(length)], this.options).loadStateDict(st.dict); // validates completely
      } catch (e) {
        throw new Error(`${this.name}.setWeights: state of '${st.name}': ${(e as Error).message}`);
      }
    }
    await this.extractIterations(weightValues);
    for (const s of this.slots.values()) s.stepper.dispose();
    this.slots.clear();
    this.pending = states.length ? states : null;
  }

  /** tfjs-layers adds `customObjects` to the config it deserializes: not an option. */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const { customObjects: _ignored, ...options } = config;
    return new cls(options);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return JSON.parse(JSON.stringify(this.options)) as tf.serialization.ConfigDict;
  }

  override dispose(): void {
    for (const s of this.slots.values()) s.stepper.dispose();
    this.slots.clear();
    super.dispose();
  }
}
