/**
 * Optimizer factories for the training loop. Every optimizer is driven the same way:
 * `step(lossFn)` computes the loss and gradients of the model's variables and applies one
 * update. Three kinds:
 * - 'tfjs': TensorFlow.js's own float32 Adam (`tf.train.adam`), the baseline users know;
 * - 'core': a bitopt optimizer class (Adam8bit, Adam, ...) driven directly: gradients from
 *   tf.variableGrads are copied to Float32Arrays, `await opt.step(grads)` updates bitopt's
 *   float32 copy of the weights, which is written back with `variable.assign`;
 * - 'adapter': bitopt's TensorFlow.js adapter (src/tfjs), a tf.Optimizer subclass, when built.
 */
import * as bitopt from 'bitopt';
import type { Model } from './models/model.js';
import { tf } from './tf.js';

/** State precisions: 32-bit float, block-wise 8-bit, block-wise 4-bit. */
export type Bits = 32 | 8 | 4;
/** Display and run order: the baseline first. */
export const ALL_BITS: readonly Bits[] = [32, 8, 4];

/**
 * The optimizer families the demo knows, with bitopt's class name per state precision. A
 * precision is one entry (`4: 'AdamW4bit'`); it runs only where the installed bitopt exports the
 * class (`availableBits`), so the table may name classes a newer library brings.
 */
export const FAMILIES = {
  adam: { label: 'Adam', classes: { 32: 'Adam', 8: 'Adam8bit', 4: 'Adam4bit' } },
  adamw: { label: 'AdamW', classes: { 32: 'AdamW', 8: 'AdamW8bit', 4: 'AdamW4bit' } },
  sgd: { label: 'SGD (momentum 0.9)', classes: { 32: 'SGD', 8: 'SGD8bit' } },
  rmsprop: { label: 'RMSprop', classes: { 32: 'RMSprop', 8: 'RMSprop8bit' } },
  adagrad: { label: 'Adagrad', classes: { 32: 'Adagrad', 8: 'Adagrad8bit' } },
  lion: { label: 'Lion', classes: { 32: 'Lion', 8: 'Lion8bit' } },
  lamb: { label: 'LAMB', classes: { 32: 'LAMB', 8: 'LAMB8bit' } },
  lars: { label: 'LARS', classes: { 32: 'LARS', 8: 'LARS8bit' } },
  ademamix: { label: 'AdEMAMix', classes: { 32: 'AdEMAMix', 8: 'AdEMAMix8bit' } },
  radam: { label: 'RAdam', classes: { 32: 'RAdam', 8: 'RAdam8bit' } },
} as const satisfies Record<string, { label: string; classes: Partial<Record<Bits, string>> }>;
export type Family = keyof typeof FAMILIES;
export const ALL_FAMILIES = Object.keys(FAMILIES) as Family[];

/** bitopt's class name for `family` at `bits`, or undefined when the table has none. */
export function className(family: Family, bits: Bits): string | undefined {
  return (FAMILIES[family].classes as Partial<Record<Bits, string>>)[bits];
}

/** The precisions of `family` whose class the installed bitopt exports, in ALL_BITS order. */
export function availableBits(family: Family, lib: Record<string, unknown> = bitopt as unknown as Record<string, unknown>): Bits[] {
  return ALL_BITS.filter((b) => {
    const name = className(family, b);
    return name !== undefined && typeof lib[name] === 'function';
  });
}

/** One optimizer variant in a comparison. */
export interface OptimizerSpec {
  /** Unique id, e.g. 'tfjs-adam', 'Adam', 'Adam8bit'. */
  id: string;
  family: Family;
  kind: 'tfjs' | 'core' | 'adapter';
  bits: Bits;
  lr: number;
}

/** One weight tensor's optimizer state at the end of a run, as the optimizer stored it. */
export interface TensorState {
  size: number;
  /** The state format (bitopt's codec name: 'float32', 'blockwise8', 'blockwise4'; tfjs: 'float32'). */
  format: string;
  bytes: number;
}

export interface TrainOptimizer {
  /** One training step; returns the batch loss (before the update). */
  step(lossFn: () => tf.Scalar): Promise<number>;
  /** Sets the learning rate of the next steps (the loop's schedule calls it before each step). */
  setLearningRate(lr: number): void;
  /** Bytes of optimizer state held now. */
  stateBytes(): number;
  /** Bytes the optimizer keeps outside tfjs tensors (bitopt's weight copy and state). */
  offTensorBytes(): number;
  /** Each variable's state format and bytes, when the optimizer can say (a bitopt checkpoint). */
  tensorStates?(): Promise<TensorState[]>;
  dispose(): void;
  /** The bitopt optimizer underneath, when there is one (the ablation reads its states). */
  readonly core?: bitopt.Optimizer;
}

export type OptimizerFactory = (spec: OptimizerSpec, model: Model) => TrainOptimizer;

function tfjsAdam(spec: OptimizerSpec, model: Model): TrainOptimizer {
  const opt = tf.train.adam(spec.lr, 0.9, 0.999, 1e-8);
  const n = model.variables.reduce((a, v) => a + v.size, 0);
  let stepped = false;
  return {
    async step(lossFn) {
      const loss = opt.minimize(lossFn, true, model.variables)!;
      const value = (await loss.data())[0];
      loss.dispose();
      stepped = true;
      return value;
    },
    // AdamOptimizer reads its (TypeScript-protected) learningRate field at every step.
    setLearningRate: (lr) => {
      (opt as unknown as { learningRate: number }).learningRate = lr;
    },
    // tf.train.adam keeps two float32 accumulators per weight (plus two scalars).
    stateBytes: () => (stepped ? 8 * n + 8 : 0),
    offTensorBytes: () => 0,
    tensorStates: async () => model.variables.map((v) => ({ size: v.size, format: 'float32', bytes: stepped ? 8 * v.size : 0 })),
    dispose: () => opt.dispose(),
  };
}

type CoreClass = new (params: Float32Array[], options?: Record<string, unknown>) => bitopt.Optimizer;

/**
 * Drives any "update Float32Arrays in place" optimizer from tfjs: gradients out as
 * Float32Arrays, `update(grads)`, weights written back into the variables.
 */
export function arrayOptimizer(model: Model, params: Float32Array[], update: (grads: Float32Array[]) => Promise<void> | void): (lossFn: () => tf.Scalar) => Promise<number> {
  return async (lossFn) => {
    const { value, grads } = tf.variableGrads(lossFn, model.variables);
    const loss = (await value.data())[0];
    const g = model.variables.map((v) => grads[v.name].dataSync().slice() as Float32Array);
    value.dispose();
    tf.dispose(grads);
    await update(g);
    model.variables.forEach((v, i) => {
      const t = tf.tensor(params[i].slice(), v.shape);
      v.assign(t); // the variable now shares t's data; t itself can go
      t.dispose();
    });
    return loss;
  };
}

/** The class name of a bitopt spec, or an error naming what is missing. */
export function specClassName(spec: OptimizerSpec): string {
  const name = className(spec.family, spec.bits);
  if (!name) throw new Error(`the demo has no ${spec.bits}-bit ${FAMILIES[spec.family].label} (known: ${ALL_BITS.filter((b) => className(spec.family, b)).join(', ')}-bit)`);
  return name;
}

/**
 * Per-tensor state from a bitopt checkpoint: a state's bytes are its arrays' bytes except the
 * quantization map, which a format shares per state and `stateBytes()` does not count.
 */
export function tensorStatesOf(dict: bitopt.StateDict): TensorState[] {
  return dict.tensors.map((t) => {
    const states = t.states as unknown as Record<string, unknown>[];
    const bytes = states.reduce((a, st) => a + Object.entries(st).reduce((b, [k, v]) => b + (k !== 'map' && ArrayBuffer.isView(v) ? v.byteLength : 0), 0), 0);
    return { size: t.length, format: states.length ? String(states[0].format) : 'none', bytes };
  });
}

/** What `floatCopyOptimizer` drives: an optimizer that updates float32 copies of the weights in place. */
export interface InPlaceOptimizer {
  step(grads: Float32Array[]): Promise<void> | void;
  setLearningRate(lr: number): void;
  stateBytes(): number;
}

/**
 * A TrainOptimizer over an optimizer of float32 weight copies (`params`, one per model variable,
 * in order): bitopt's core classes and the ablation's variants alike.
 */
export function floatCopyOptimizer(model: Model, params: Float32Array[], opt: InPlaceOptimizer, extra: Partial<TrainOptimizer> = {}): TrainOptimizer {
  return {
    step: arrayOptimizer(model, params, (g) => opt.step(g)),
    setLearningRate: (lr) => opt.setLearningRate(lr),
    stateBytes: () => opt.stateBytes(),
    offTensorBytes: () => opt.stateBytes() + params.reduce((a, p) => a + p.byteLength, 0),
    dispose: () => {},
    ...extra,
  };
}

/** The model's weights as float32 copies, the arrays a core or variant optimizer updates. */
export function weightCopies(model: Model): Float32Array[] {
  return model.variables.map((v) => v.dataSync().slice() as Float32Array);
}

/**
 * bitopt's core class `name` on float32 copies of the weights, the model's full-precision
 * tensors (StableEmbedding) kept at 32 bits; `options` go to the constructor after lr.
 */
export function coreClassOptimizer(name: string, spec: OptimizerSpec, model: Model, options: Record<string, unknown> = {}): TrainOptimizer {
  const Class = (bitopt as unknown as Record<string, CoreClass>)[name];
  if (typeof Class !== 'function') throw new Error(`the installed bitopt has no optimizer class ${name}`);
  const params = weightCopies(model);
  const opt = new Class(params, { lr: spec.lr, ...options });
  model.variables.forEach((v, i) => {
    if (model.fullPrecision.has(v)) opt.overrideConfig(params[i], { optimBits: 32 });
  });
  return floatCopyOptimizer(model, params, { step: (g) => opt.step(g), setLearningRate: (lr) => opt.setOptions({ lr }), stateBytes: () => opt.stateBytes() }, {
    core: opt,
    tensorStates: async () => tensorStatesOf(opt.stateDict()),
  });
}

/** The factory the demo uses: tfjs Adam, bitopt core classes, or the tfjs adapter if given. */
export function createOptimizerFactory(adapter?: OptimizerFactory): OptimizerFactory {
  return (spec, model) => {
    if (spec.kind === 'tfjs') return tfjsAdam(spec, model);
    if (spec.kind === 'adapter') {
      if (!adapter) throw new Error('the bitopt TensorFlow.js adapter is not available in this build');
      return adapter(spec, model);
    }
    return coreClassOptimizer(specClassName(spec), spec, model);
  };
}

/** Display name of a variant, e.g. 'tfjs Adam (float32)', 'bitopt Adam8bit'. */
export function specLabel(spec: OptimizerSpec): string {
  if (spec.kind === 'tfjs') return 'tfjs Adam (float32)';
  const name = className(spec.family, spec.bits) ?? `${FAMILIES[spec.family].label} ${spec.bits}-bit`;
  return spec.kind === 'adapter' ? `bitopt/tfjs ${name}` : `bitopt ${name}`;
}
