/**
 * `bitopt/tfjs/layers`: bitopt's tfjs-layers layers, apart from `bitopt/tfjs` so that the
 * optimizers need only @tensorflow/tfjs-core (a user without @tensorflow/tfjs-layers can import
 * them). This entry needs @tensorflow/tfjs-layers.
 *
 *   import { stableEmbedding } from 'bitopt/tfjs/layers';
 */
export { StableEmbedding, stableEmbedding, type StableEmbeddingArgs } from './stable-embedding.js';
export { registerOptimOverride, optimOverrideOf } from './overrides.js';
