/**
 * StableEmbedding (docs/architecture.md §1.4), as a tfjs-layers layer: an embedding with Xavier-uniform
 * initialisation and layer normalisation of its output, whose matrix keeps 32-bit optimizer
 * state under every bitopt optimizer (registered with `registerOptimOverride`), to calm the
 * non-uniform gradients of token embeddings. Registered for serialization as
 * 'bitopt.StableEmbedding'.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayerArgs } from '@tensorflow/tfjs-layers/dist/engine/topology.js';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { registerOptimOverride } from './overrides.js';

export interface StableEmbeddingArgs extends LayerArgs {
  /** Vocabulary size: ids are integers in [0, inputDim). */
  inputDim: number;
  /** Embedding width. */
  outputDim: number;
  /** Layer-norm epsilon (default 1e-5, as the reference library's torch LayerNorm). */
  epsilon?: number;
  /** Seed of the Xavier-uniform initialiser (for reproducible models). */
  seed?: number;
}

type Shape = (number | null)[];

export class StableEmbedding extends tfl.layers.Layer {
  /** The name tfjs serialization registers the layer under. */
  static className = 'bitopt.StableEmbedding';
  /** Vocabulary size: ids are integers in [0, inputDim). */
  readonly inputDim: number;
  /** Embedding width. */
  readonly outputDim: number;
  /** Layer-norm epsilon (default 1e-5). */
  readonly epsilon: number;
  /** Seed of the Xavier-uniform initialiser, if one was given. */
  readonly seed: number | undefined;
  private embeddings: LayerVariable | null = null;
  private gamma: LayerVariable | null = null;
  private beta: LayerVariable | null = null;

  constructor(args: StableEmbeddingArgs) {
    super(args);
    const { inputDim, outputDim } = args;
    for (const [k, v] of Object.entries({ inputDim, outputDim })) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`StableEmbedding: ${k} must be a positive integer, got ${String(v)}`);
    }
    this.inputDim = inputDim;
    this.outputDim = outputDim;
    this.epsilon = args.epsilon ?? 1e-5;
    if (!(this.epsilon > 0)) throw new Error(`StableEmbedding: epsilon must be > 0, got ${String(args.epsilon)}`);
    this.seed = args.seed;
  }

  override build(_inputShape: Shape | Shape[]): void {
    const xavier = tfl.initializers.glorotUniform(this.seed === undefined ? {} : { seed: this.seed });
    this.embeddings = this.addWeight('embeddings', [this.inputDim, this.outputDim], 'float32', xavier);
    this.gamma = this.addWeight('gamma', [this.outputDim], 'float32', tfl.initializers.ones());
    this.beta = this.addWeight('beta', [this.outputDim], 'float32', tfl.initializers.zeros());
    // 32-bit optimizer state for the embedding matrix (the reference library's override).
    registerOptimOverride(this.embeddings.read() as tf.Variable, { optimBits: 32 });
    this.built = true;
  }

  /** The embedding matrix's variable (what the optimizer override is registered for). */
  get embeddingsVariable(): tf.Variable {
    if (!this.embeddings) throw new Error('StableEmbedding: the layer is not built yet');
    return this.embeddings.read() as tf.Variable;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return [...(inputShape as Shape), this.outputDim];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const ids = tf.cast(Array.isArray(inputs) ? inputs[0] : inputs, 'int32');
      const e = tf.gather(this.embeddings!.read(), ids);
      const { mean, variance } = tf.moments(e, -1, true);
      const normed = tf.div(tf.sub(e, mean), tf.sqrt(tf.add(variance, this.epsilon)));
      return tf.add(tf.mul(normed, this.gamma!.read()), this.beta!.read());
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = { inputDim: this.inputDim, outputDim: this.outputDim, epsilon: this.epsilon };
    if (this.seed !== undefined) config.seed = this.seed;
    return { ...config, ...super.getConfig() };
  }
}

tf.serialization.registerClass(StableEmbedding);

/** `stableEmbedding({ inputDim, outputDim })`, like `tf.layers.embedding`. */
export function stableEmbedding(args: StableEmbeddingArgs): StableEmbedding {
  return new StableEmbedding(args);
}
