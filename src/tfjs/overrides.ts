/**
 * Per-variable optimizer options that a layer asks for (like the reference library's
 * GlobalOptimManager): StableEmbedding registers `{ optimBits: 32 }` for its embedding matrix,
 * and every bitopt tfjs optimizer applies it when it first steps that variable.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BaseOptions } from '../optim/optimizer.js';

const registry = new WeakMap<tf.Variable, Partial<BaseOptions>>();

/** Asks every bitopt optimizer to use `options` for `variable` (before its first step). */
export function registerOptimOverride(variable: tf.Variable, options: Partial<BaseOptions>): void {
  registry.set(variable, { ...registry.get(variable), ...options });
}

/** The options registered for `variable`, if any. */
export function optimOverrideOf(variable: tf.Variable): Partial<BaseOptions> | undefined {
  return registry.get(variable);
}
