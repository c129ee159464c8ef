import type { Coefficients, UpdateRule } from '../optim/rule.js';
import type { StateStore } from '../optim/state.js';

/** One fused optimizer pass over one tensor. */
export interface UpdateJob {
  rule: UpdateRule;
  param: Float32Array;
  grad: Float32Array;
  states: StateStore[];
  coefficients: Coefficients;
  /** Gradient multiplier from percentile clipping (1 when off). */
  gradScale: number;
  /** Elements per pass: the 8-bit block size (also used to chunk float32 states). */
  blockSize: number;
}

/** Sums a trust-ratio rule needs before its update pass. */
export interface DirectionNorms {
  /** sum of squared update directions over the tensor */
  updateSq: number;
  /** sum of squared parameters */
  paramSq: number;
}

/** A CPU backend: the reference TypeScript loop, or WebAssembly kernels. */
export interface CpuKernel {
  readonly name: string;
  update(job: UpdateJob): void | Promise<void>;
  directionNorms(job: UpdateJob): DirectionNorms | Promise<DirectionNorms>;
}
