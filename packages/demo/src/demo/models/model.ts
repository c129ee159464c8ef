/** What the training loop needs from a model: its variables and a loss on one batch. */
import { tf } from '../tf.js';

export interface Batch {
  x: tf.Tensor;
  y: tf.Tensor;
}

export interface Model {
  readonly variables: tf.Variable[];
  /** Human-readable name of each variable, same order. */
  readonly names: string[];
  /** Variables whose optimizer state stays 32-bit (StableEmbedding's weights). */
  readonly fullPrecision: ReadonlySet<tf.Variable>;
  /** Mean loss of a batch; called inside tf.variableGrads, so it must be pure tf ops. */
  loss(batch: Batch): tf.Scalar;
  /** Logits for a batch (evaluation). */
  logits(x: tf.Tensor): tf.Tensor;
  dispose(): void;
}

export function paramCount(model: Model): number {
  return model.variables.reduce((n, v) => n + v.size, 0);
}

/** Mean softmax cross-entropy of `logits` [N, C] against integer `labels` [N]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const logp = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(tf.oneHot(labels, logits.shape[1]), logp), 1);
  return tf.neg(tf.mean(picked)) as tf.Scalar;
}

/** Creates named variables from initial values (so runs with the same seed start identically). */
export class VariableSet {
  readonly variables: tf.Variable[] = [];
  readonly names: string[] = [];
  private static counter = 0;
  add(name: string, values: Float32Array, shape: number[]): tf.Variable {
    const initial = tf.tensor(values, shape);
    const v = tf.variable(initial, true, `${name}_${VariableSet.counter++}`);
    initial.dispose(); // the variable keeps its own reference to the data
    this.variables.push(v);
    this.names.push(name);
    return v;
  }
  dispose(): void {
    this.variables.forEach((v) => v.dispose());
  }
}
