/**
 * The page's task: the demo's MNIST MLP (784-256-128-10, ReLU, softmax cross-entropy), with
 * parameters laid out as [W0, b0, W1, b1, W2, b2]; W is [fanIn, fanOut] row-major (x · W).
 * The same seed gives the same initial weights on the CPU and the GPU, for every optimizer.
 */
import { Rng, xavierUniform } from '../src/demo/rng.js';
import * as bitopt from 'bitopt/browser';

export const IMAGE_SIZE = 784;
export const NUM_CLASSES = 10;
export const MLP_SIZES = [IMAGE_SIZE, 256, 128, NUM_CLASSES];

export function initialParams(sizes: number[], seed: number): Float32Array[] {
  const rng = new Rng(seed);
  const out: Float32Array[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    out.push(xavierUniform(rng, sizes[l], sizes[l + 1]));
    out.push(new Float32Array(sizes[l + 1]));
  }
  return out;
}

export function paramCount(sizes: number[]): number {
  let n = 0;
  for (let l = 0; l + 1 < sizes.length; l++) n += sizes[l] * sizes[l + 1] + sizes[l + 1];
  return n;
}

type Class = bitopt.OptimizerClass<bitopt.BaseOptions>;

export interface Family {
  id: string;
  label: string;
  eight: Class;
  full: Class;
  /** The 4-bit class, where bitopt has one. */
  four?: Class;
  /** Learning rate for this task (the demo's MNIST table). */
  lr: number;
  options?: Record<string, unknown>;
}

const c = (x: unknown) => x as Class;
export const FAMILIES: Family[] = [
  { id: 'adam', label: 'Adam', eight: c(bitopt.Adam8bit), full: c(bitopt.Adam), four: c(bitopt.Adam4bit), lr: 1e-3 },
  { id: 'adamw', label: 'AdamW', eight: c(bitopt.AdamW8bit), full: c(bitopt.AdamW), four: c(bitopt.AdamW4bit), lr: 1e-3 },
  { id: 'lion', label: 'Lion', eight: c(bitopt.Lion8bit), full: c(bitopt.Lion), lr: 1e-4 },
  { id: 'sgd', label: 'SGD (momentum 0.9)', eight: c(bitopt.SGD8bit), full: c(bitopt.SGD), lr: 0.02, options: { momentum: 0.9 } },
  { id: 'rmsprop', label: 'RMSprop', eight: c(bitopt.RMSprop8bit), full: c(bitopt.RMSprop), lr: 3e-4 },
  { id: 'adagrad', label: 'Adagrad', eight: c(bitopt.Adagrad8bit), full: c(bitopt.Adagrad), lr: 1e-2 },
  { id: 'ademamix', label: 'AdEMAMix', eight: c(bitopt.AdEMAMix8bit), full: c(bitopt.AdEMAMix), lr: 1e-3 },
  { id: 'lamb', label: 'LAMB', eight: c(bitopt.LAMB8bit), full: c(bitopt.LAMB), lr: 2e-3 },
  { id: 'lars', label: 'LARS', eight: c(bitopt.LARS8bit), full: c(bitopt.LARS), lr: 0.5, options: { momentum: 0.9 } },
];

export function family(id: string): Family {
  const f = FAMILIES.find((x) => x.id === id);
  if (!f) throw new Error(`unknown optimizer '${id}' (one of ${FAMILIES.map((x) => x.id).join(', ')})`);
  return f;
}

/** The class of `f` at `bits`, or an error naming the precisions it has. */
export function classFor(f: Family, bits: 4 | 8 | 32): Class {
  const c = bits === 32 ? f.full : bits === 8 ? f.eight : f.four;
  if (!c) throw new Error(`${f.label} has no ${bits}-bit class (choose 8 or 32 bits)`);
  return c;
}
