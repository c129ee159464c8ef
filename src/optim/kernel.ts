/**
 * The kernel contract: what an optimizer hands a CPU kernel (one fused pass over one tensor) and
 * what it gets back. Kernels (src/kernels/cpu) implement it; the optimizer framework depends on
 * nothing but this file.
 *
 * Which kernel a new optimizer uses is injected: an entry point (`bitopt`, `bitopt/browser`,
 * `bitopt/tfjs`, through src/default-kernel.ts) registers a factory with
 * `setDefaultCpuKernelFactory`, e.g. the WebAssembly SIMD kernel where it runs. Without one, an
 * optimizer runs the reference kernel (src/kernels/cpu/reference.ts): the readable
 * specification, plain TypeScript with no dependencies but these types, so importing it here
 * adds no cycle and no platform code.
 */
import { createReferenceKernel } from '../kernels/cpu/reference.js';
import type { Coefficients, UpdateRule } from './rule.js';
import type { StateStore } from './state.js';

/** One fused optimizer pass over one tensor. */
export interface UpdateJob {
  /** The update rule to run. */
  rule: UpdateRule;
  /** The parameter, updated in place. */
  param: Float32Array;
  /** Its gradient (not changed). */
  grad: Float32Array;
  /** The rule's states for this tensor, in the rule's order, updated in place. */
  states: StateStore[];
  /** This step's scalars (learning rate, bias corrections, trust ratio). */
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
  /** The kernel's name, e.g. 'reference' or 'wasm-simd'. */
  readonly name: string;
  /** Runs one fused update pass over the job's tensor (parameter and states in place). */
  update(job: UpdateJob): void | Promise<void>;
  /** The sums a trust-ratio rule (LAMB, LARS) needs, computed without changing anything. */
  directionNorms(job: UpdateJob): DirectionNorms | Promise<DirectionNorms>;
  /**
   * The stores this kernel runs fastest on for `states` (e.g. the same states in its own memory),
   * or `states` itself. The optimizer keeps what it returns; a kernel never replaces an
   * optimizer's states behind its back.
   */
  placeStates?(states: StateStore[]): StateStore[];
  /**
   * Allocates now everything that `update` (and `directionNorms` where `norms` is set) of these
   * jobs will need (scratch, staging, tables), or throws, e.g. out of memory or an unusable
   * array. The optimizer calls it before it changes anything in a step, so that a step either
   * throws with nothing changed or runs to the end (docs/reliability.md, invariant 1).
   */
  reserve?(jobs: readonly ReservedJob[]): void;
  /**
   * The object that identifies the memory `view` lies in when that is not `view.buffer`
   * (a WebAssembly memory hands out a new buffer object each time it grows), for the
   * optimizer's aliasing check; undefined for ordinary arrays.
   */
  aliasKey?(view: ArrayBufferView): object | undefined;
}

/** What `reserve` learns of a job before its coefficients are known. */
export type ReservedJob = Pick<UpdateJob, 'rule' | 'param' | 'grad' | 'states' | 'blockSize'> & {
  /** The job also runs `directionNorms` (a trust-ratio rule). */
  norms: boolean;
};

let factory: (() => CpuKernel) | null = null;

/**
 * Sets the factory of the kernel that optimizers use from their first step on unless
 * `setKernel` says otherwise (null: back to the reference kernel); returns the previous one.
 * Entry points call it (src/default-kernel.ts).
 */
export function setDefaultCpuKernelFactory(create: (() => CpuKernel) | null): (() => CpuKernel) | null {
  if (create !== null && typeof create !== 'function') throw new Error('setDefaultCpuKernelFactory: expected a function returning a CpuKernel, or null');
  const previous = factory;
  factory = create;
  return previous;
}

/** A kernel from the registered factory, else the reference kernel. */
export function createCpuKernel(): CpuKernel {
  return factory ? factory() : createReferenceKernel();
}
