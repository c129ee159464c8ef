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

/** The optimizer families the demo knows, with their bitopt 32-bit and 8-bit class names. */
export const FAMILIES = {
  adam: { label: 'Adam', bits32: 'Adam', bits8: 'Adam8bit' },
  adamw: { label: 'AdamW', bits32: 'AdamW', bits8: 'AdamW8bit' },
  sgd: { label: 'SGD (momentum 0.9)', bits32: 'SGD', bits8: 'SGD8bit' },
  rmsprop: { label: 'RMSprop', bits32: 'RMSprop', bits8: 'RMSprop8bit' },
  adagrad: { label: 'Adagrad', bits32: 'Adagrad', bits8: 'Adagrad8bit' },
  lion: { label: 'Lion', bits32: 'Lion', bits8: 'Lion8bit' },
  lamb: { label: 'LAMB', bits32: 'LAMB', bits8: 'LAMB8bit' },
  lars: { label: 'LARS', bits32: 'LARS', bits8: 'LARS8bit' },
  ademamix: { label: 'AdEMAMix', bits32: 'AdEMAMix', bits8: 'AdEMAMix8bit' },
} as const;
export type Family = keyof typeof FAMILIES;
export const ALL_FAMILIES = Object.keys(FAMILIES) as Family[];

/** One optimizer variant in a comparison. */
export interface OptimizerSpec {
  /** Unique id, e.g. 'tfjs-adam', 'Adam', 'Adam8bit'. */
  id: string;
  family: Family;
  kind: 'tfjs' | 'core' | 'adapter';
  bits: 8 | 32;
  lr: number;
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

function coreOptimizer(spec: OptimizerSpec, model: Model): TrainOptimizer {
  const className = spec.bits === 8 ? FAMILIES[spec.family].bits8 : FAMILIES[spec.family].bits32;
  const Class = (bitopt as unknown as Record<string, CoreClass>)[className];
  if (typeof Class !== 'function') throw new Error(`bitopt has no optimizer class ${className}`);
  // bitopt updates Float32Arrays in place: keep a float32 copy of every weight.
  const params = model.variables.map((v) => v.dataSync().slice() as Float32Array);
  const opt = new Class(params, { lr: spec.lr });
  model.variables.forEach((v, i) => {
    if (model.fullPrecision.has(v)) opt.overrideConfig(params[i], { optimBits: 32 });
  });
  return {
    step: arrayOptimizer(model, params, (g) => opt.step(g)),
    setLearningRate: (lr) => opt.setOptions({ lr }),
    core: opt,
    stateBytes: () => opt.stateBytes(),
    offTensorBytes: () => opt.stateBytes() + params.reduce((a, p) => a + p.byteLength, 0),
    dispose: () => {},
  };
}

/** The factory the demo uses: tfjs Adam, bitopt core classes, or the tfjs adapter if given. */
export function createOptimizerFactory(adapter?: OptimizerFactory): OptimizerFactory {
  return (spec, model) => {
    if (spec.kind === 'tfjs') return tfjsAdam(spec, model);
    if (spec.kind === 'adapter') {
      if (!adapter) throw new Error('the bitopt TensorFlow.js adapter is not available in this build');
      return adapter(spec, model);
    }
    return coreOptimizer(spec, model);
  };
}

/** Display name of a variant, e.g. 'tfjs Adam (float32)', 'bitopt Adam8bit'. */
export function specLabel(spec: OptimizerSpec): string {
  if (spec.kind === 'tfjs') return 'tfjs Adam (float32)';
  const name = spec.bits === 8 ? FAMILIES[spec.family].bits8 : FAMILIES[spec.family].bits32;
  return spec.kind === 'adapter' ? `bitopt/tfjs ${name}` : `bitopt ${name}`;
}
