/**
 * The demo's tasks: real data, a model, a batch sampler and an evaluation. Each run of a task
 * with the same seed sees the same initial weights and the same batches, whatever optimizer
 * trains it, so 8-bit and 32-bit runs differ only by the optimizer.
 */
import { loadBrown } from './data/brown.js';
import { IMAGE_SIZE, loadMnist } from './data/mnist.js';
import { createMlp } from './models/mlp.js';
import type { Batch, Model } from './models/model.js';
import { createTransformer, type TransformerConfig } from './models/transformer.js';
import type { Family } from './optimizers.js';
import { Rng } from './rng.js';
import { tf } from './tf.js';

export type TaskId = 'mnist' | 'lm';
export const TASK_IDS: TaskId[] = ['mnist', 'lm'];

export interface Evaluation {
  loss: number;
  /** Accuracy in percent (classification tasks only). */
  accuracy?: number;
}

export interface Task {
  id: TaskId;
  title: string;
  description: string;
  dataSource: string;
  defaultSteps: number;
  evalEvery: number;
  /**
   * Rough cost of one training step in ms (the ms/step column on one core of a 2-core AMD EPYC,
   * tfjs wasm): with several processes the demo starts the costliest runs first, so that the
   * long LM runs do not end up last on one core while the other idles.
   */
  msPerStep: number;
  /** Learning rate per optimizer family for this task. */
  lr: Record<Family, number>;
  createModel(seed: number): Model;
  /** A batch sampler seeded by the run's seed (independent of the optimizer). */
  batches(seed: number): () => Batch;
  /** Async: on tfjs's webgpu backend a tensor can only be read back asynchronously. */
  evaluate(model: Model): Promise<Evaluation>;
  /** The metric compared in the summary: loss unit. */
  lossLabel: string;
}

const MNIST_LR: Record<Family, number> = {
  adam: 1e-3, adamw: 1e-3, sgd: 0.02, rmsprop: 3e-4, adagrad: 1e-2, lion: 1e-4, lamb: 2e-3, lars: 0.2, ademamix: 1e-3, radam: 1e-3,
};
const LM_LR: Record<Family, number> = {
  adam: 3e-3, adamw: 3e-3, sgd: 0.1, rmsprop: 1e-3, adagrad: 2e-2, lion: 3e-4, lamb: 5e-3, lars: 1, ademamix: 2e-3, radam: 3e-3,
};

export function mnistTask(options: { batchSize?: number; hidden?: number[] } = {}): Task {
  const data = loadMnist();
  const batchSize = options.batchSize ?? 64;
  return {
    id: 'mnist',
    title: 'MNIST digits, MLP 784-256-128-10',
    description: `ReLU MLP on ${data.train.count} real handwritten digits, batch ${batchSize}; test loss and accuracy on ${data.test.count} held-out digits.`,
    dataSource: data.source,
    defaultSteps: 600,
    evalEvery: 50,
    msPerStep: 25,
    lr: MNIST_LR,
    lossLabel: 'test cross-entropy (nats)',
    createModel: (seed) => createMlp(seed, options.hidden),
    batches(seed) {
      const rng = new Rng(seed * 7919 + 1);
      const order = Int32Array.from({ length: data.train.count }, (_, i) => i);
      let pos = order.length;
      return () => {
        const x = new Float32Array(batchSize * IMAGE_SIZE);
        const y = new Int32Array(batchSize);
        for (let b = 0; b < batchSize; b++) {
          if (pos >= order.length) {
            rng.shuffle(order);
            pos = 0;
          }
          const i = order[pos++];
          x.set(data.train.images.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE), b * IMAGE_SIZE);
          y[b] = data.train.labels[i];
        }
        return { x: tf.tensor2d(x, [batchSize, IMAGE_SIZE]), y: tf.tensor1d(y, 'int32') };
      };
    },
    async evaluate(model) {
      const [lossT, correctT] = tf.tidy(() => {
        const x = tf.tensor2d(data.test.images, [data.test.count, IMAGE_SIZE]);
        const y = tf.tensor1d(data.test.labels, 'int32');
        const logits = model.logits(x) as tf.Tensor2D;
        const logp = tf.logSoftmax(logits);
        return [tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(y, 10), logp), 1))), tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32'))];
      });
      const [loss, correct] = [(await lossT.data())[0], (await correctT.data())[0]];
      tf.dispose([lossT, correctT]);
      return { loss, accuracy: (100 * correct) / data.test.count };
    },
  };
}

/**
 * The LM's sizes. 'small' trains in minutes on two CPU cores. 'base' is for a GPU: at 3.2M
 * parameters the StableEmbedding's 32-bit state (vocab × d_model) is small enough that the
 * whole model's 8-bit Adam state is under 26% of 32-bit Adam's (on 'small' it is 28.5%).
 */
export type LmSize = 'small' | 'base';
export const LM_SIZES: Record<LmSize, { config: Omit<TransformerConfig, 'vocab'>; batchSize: number; lrScale: number }> = {
  small: { config: { context: 64, dModel: 64, heads: 4, layers: 2 }, batchSize: 16, lrScale: 1 },
  base: { config: { context: 64, dModel: 256, heads: 8, layers: 4 }, batchSize: 32, lrScale: 1 / 3 },
};

export function lmTask(options: { size?: LmSize; batchSize?: number; config?: Partial<TransformerConfig>; validSequences?: number } = {}): Task {
  const text = loadBrown();
  const size = LM_SIZES[options.size ?? 'small'];
  const config: TransformerConfig = { ...size.config, vocab: text.vocab.length, ...options.config };
  const batchSize = options.batchSize ?? size.batchSize;
  const T = config.context;
  // A fixed validation set: evenly spaced windows over the held-out samples.
  const validCount = options.validSequences ?? 64;
  const validStarts = Array.from({ length: validCount }, (_, i) => Math.floor((i * (text.valid.length - T - 1)) / validCount));
  const windows = (source: Uint8Array, starts: number[]) => {
    const x = new Int32Array(starts.length * T);
    const y = new Int32Array(starts.length * T);
    starts.forEach((s, b) => {
      for (let t = 0; t < T; t++) {
        x[b * T + t] = source[s + t];
        y[b * T + t] = source[s + t + 1];
      }
    });
    return { x: tf.tensor2d(x, [starts.length, T], 'int32'), y: tf.tensor2d(y, [starts.length, T], 'int32') };
  };
  return {
    id: 'lm',
    title: `Character LM, transformer d${config.dModel}×${config.layers} layers`,
    description:
      `GPT-style causal transformer (d_model ${config.dModel}, ${config.heads} heads, ${config.layers} layers, context ${T}) with a StableEmbedding ` +
      `over ${config.vocab} characters, batch ${batchSize}; validation loss on ${validCount}×${T} characters of held-out Brown Corpus samples.`,
    dataSource: text.source,
    defaultSteps: 400,
    evalEvery: 50,
    // Measured on 'small'; 'base' costs more still, so the order (LM runs first) holds for both.
    msPerStep: 250,
    lr: Object.fromEntries(Object.entries(LM_LR).map(([f, lr]) => [f, lr * size.lrScale])) as Record<Family, number>,
    lossLabel: 'validation cross-entropy (nats/char)',
    createModel: (seed) => createTransformer(seed, config),
    batches(seed) {
      const rng = new Rng(seed * 104729 + 3);
      return () => windows(text.train, Array.from({ length: batchSize }, () => rng.int(text.train.length - T - 1)));
    },
    async evaluate(model) {
      const lossT = tf.tidy(() => model.loss(windows(text.valid, validStarts)));
      const loss = (await lossT.data())[0];
      lossT.dispose();
      return { loss };
    },
  };
}

export function createTask(id: TaskId, options: { lmSize?: LmSize } = {}): Task {
  if (id === 'mnist') return mnistTask();
  if (id === 'lm') return lmTask({ size: options.lmSize });
  throw new Error(`unknown task '${String(id)}' (expected one of ${TASK_IDS.join(', ')})`);
}
