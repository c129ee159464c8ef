/**
 * bitopt for TensorFlow.js: `import * as bitopt from 'bitopt/tfjs'`, then
 * `optimizer: bitopt.adam8bit(1e-3)` where you had `optimizer: tf.train.adam(1e-3)`.
 * Peer dependency: @tensorflow/tfjs-core only. The layers (StableEmbedding), which need
 * @tensorflow/tfjs-layers, are in `bitopt/tfjs/layers` (./layers.ts).
 */
import '../default-kernel.js';
export * from './classes.js';
export * from './factories.js';
export { BitoptOptimizer } from './optimizer.js';
export { fromTfjsAdam, setWeightsFromTfjsAdam, toTfjsAdam, toTfjsAdamWeights } from './adam-interop.js';
export { savedClassName } from './saved-name.js';
export { registerOptimOverride, optimOverrideOf } from './overrides.js';
export { decodeVariableStates, encodeVariableState, TFJS_STATE_FORMAT, TFJS_STATE_VERSION, type VariableState } from './weights.js';
export type { CoreClass, JoinInit, StepItem, TfjsEngine } from './engine.js';
