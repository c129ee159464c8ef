/**
 * The capacity run's model family: a wide MLP, `inputs → width → … → width → outputs`, ReLU,
 * no biases, learning a fixed random teacher (y = tanh(x·A)·C) from fresh batches.
 *
 * Why an MLP: almost all of its parameters are in a few width × width matrices, so training
 * memory is weights + gradients + optimizer state, the part the optimizer decides; its
 * activations (batch × width) are tiny and do not hide the difference, as a transformer's
 * attention activations would at small sizes. One knob (the width) sets the size, so a
 * search over parameter counts is a search over one integer.
 */
import { Rng } from '../rng.js';
import { tf } from '../tf.js';

export interface MlpConfig {
  inputs: number;
  width: number;
  /** Hidden width × width matrices (the layers that carry the parameters). */
  hidden: number;
  outputs: number;
  batch: number;
}

/** The family: everything fixed but the width. */
export const FAMILY = { inputs: 64, hidden: 3, outputs: 16, batch: 16 } as const;
/** Widths are multiples of this (whole SIMD vectors and quantization blocks). */
export const WIDTH_STEP = 16;

export function mlpConfig(width: number): MlpConfig {
  return { ...FAMILY, width };
}

export function mlpShapes(c: MlpConfig): [number, number][] {
  return [[c.inputs, c.width], ...Array.from({ length: c.hidden }, () => [c.width, c.width] as [number, number]), [c.width, c.outputs]];
}

export function mlpParams(c: MlpConfig): number {
  return mlpShapes(c).reduce((a, [r, k]) => a + r * k, 0);
}

/** The largest width (a multiple of WIDTH_STEP, at least one step) whose model has at most `params` parameters. */
export function widthForParams(params: number): number {
  const { inputs, hidden, outputs } = FAMILY;
  // hidden·w² + (inputs + outputs)·w = params
  const b = inputs + outputs;
  const w = (-b + Math.sqrt(b * b + 4 * hidden * params)) / (2 * hidden);
  return Math.max(WIDTH_STEP, Math.floor(w / WIDTH_STEP) * WIDTH_STEP);
}

/**
 * x·W with a backward pass of two plain matmuls: tfjs-wasm runs matMul with a transposed operand
 * (its default gradient: dy·Wᵀ and xᵀ·dy) on a slow path, 8-10× slower than XNNPACK's plain
 * one at width 2048 on this machine. Transposing the small batch-sized operands instead gives
 * the same gradients (dx = (W·dyᵀ)ᵀ, dW = xᵀ·dy with xᵀ materialized) with the same
 * width × width temporaries, so the memory measured is the default's.
 */
const dense = tf.customGrad(((x: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [sx, sw] = saved as tf.Tensor2D[];
      const g = dy as tf.Tensor2D;
      return [tf.transpose(tf.matMul(sw, tf.transpose(g))), tf.matMul(tf.transpose(sx), g)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

export interface Mlp {
  config: MlpConfig;
  variables: tf.Variable[];
  params: number;
  /** Mean squared error on one fresh batch of the teacher's data (`step` picks the batch). */
  loss(step: number): tf.Scalar;
  dispose(): void;
}

/**
 * Builds the model in tfjs's memory. Weights are filled in place in the heap (He-uniform, from
 * the seeded RNG) rather than uploaded from a JS array: no transient copy of the model outside
 * the wall.
 */
export function buildMlp(config: MlpConfig, seed: number, fill: (t: tf.Tensor, f: (a: Float32Array) => void) => void): Mlp {
  const rng = new Rng(seed);
  const variables: tf.Variable[] = [];
  try {
    for (const [i, [fanIn, fanOut]] of mlpShapes(config).entries()) {
      const zeros = tf.zeros([fanIn, fanOut]);
      const v = tf.variable(zeros, true, `capacity/w${i}`);
      zeros.dispose();
      const limit = Math.sqrt(6 / fanIn);
      fill(v, (a) => {
        for (let k = 0; k < a.length; k++) a[k] = (2 * rng.next() - 1) * limit;
      });
      variables.push(v);
    }
  } catch (e) {
    for (const v of variables) v.dispose();
    throw e;
  }
  const teacherRng = new Rng(seed + 1000);
  const teacherA = tf.tensor2d(Float32Array.from({ length: config.inputs * 8 }, () => teacherRng.normal() / Math.sqrt(config.inputs)), [config.inputs, 8]);
  const teacherC = tf.tensor2d(Float32Array.from({ length: 8 * config.outputs }, () => teacherRng.normal()), [8, config.outputs]);
  const last = variables.length - 1;
  return {
    config,
    variables,
    params: mlpParams(config),
    loss(step) {
      return tf.tidy(() => {
        const r = new Rng(seed * 7919 + step);
        const x = tf.tensor2d(Float32Array.from({ length: config.batch * config.inputs }, () => r.normal()), [config.batch, config.inputs]);
        const y = tf.matMul(tf.tanh(tf.matMul(x, teacherA)), teacherC);
        let h: tf.Tensor2D = x;
        for (let i = 0; i < last; i++) h = tf.relu(dense(h, variables[i] as tf.Variable<tf.Rank.R2>));
        const out = dense(h, variables[last] as tf.Variable<tf.Rank.R2>);
        return tf.mean(tf.square(tf.sub(out, y)));
      });
    },
    dispose() {
      for (const v of variables) v.dispose();
      teacherA.dispose();
      teacherC.dispose();
    },
  };
}
