/**
 * bitopt for TensorFlow.js: `import * as bitopt from 'bitopt/tfjs'`, then
 * `optimizer: bitopt.adam8bit(1e-3)` where you had `optimizer: tf.train.adam(1e-3)`.
 * Peer dependencies: @tensorflow/tfjs-core (and @tensorflow/tfjs-layers for StableEmbedding).
 */
import '../default-kernel.js';
export * from './classes.js';
export { BitoptOptimizer } from './optimizer.js';
export { registerOptimOverride, optimOverrideOf } from './overrides.js';
export { decodeVariableStates, encodeVariableState, TFJS_STATE_FORMAT, TFJS_STATE_VERSION, type VariableState } from './weights.js';
export { StableEmbedding, stableEmbedding, type StableEmbeddingArgs } from './stable-embedding.js';
export type { CoreClass, TfjsEngine } from './engine.js';
