/**
 * What the tfjs optimizer needs from the bitopt engine that steps all its variables: the CPU
 * optimizer (./cpu-engine.ts) on the backends whose data reads synchronously, or the WebGPU
 * engine (./webgpu-engine.ts) on tfjs's webgpu backend. One engine per tfjs optimizer: a
 * variable joins it at its first step, and each `applyGradients` is one engine step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BaseOptions, Optimizer, Params } from '../optim/optimizer.js';
import type { StateDict, TensorStateDict } from '../optim/statedict.js';
import { CpuEngine } from './cpu-engine.js';
import { createWebgpuEngine } from './webgpu-engine.js';

/** A core optimizer class, e.g. Adam8bit. */
export type CoreClass<O extends BaseOptions> = new (params: Params<O>, options?: O) => Optimizer<O>;

/** How a variable joins: its override options, and its state restored by setWeights. */
export interface JoinInit {
  /** Per-variable option overrides (e.g. `{ optimBits: 32 }`, from `registerOptimOverride`). */
  override?: object;
  /** A state dict's tensor entry (already validated against the variable's size). */
  state?: TensorStateDict;
}

/** One variable's part of a step: `grad` is float32 with the variable's shape. */
export interface StepItem {
  /** The variable's index in the engine (what `join` returned). */
  index: number;
  /** The variable to update in place. */
  variable: tf.Variable;
  /** Its gradient (float32, the variable's shape). */
  grad: tf.Tensor;
}

/** The engine that steps a tfjs optimizer's variables (CPU optimizer or WebGPU engine). */
export interface TfjsEngine {
  /** 'cpu' (values stepped on the CPU) or 'webgpu' (stepped on the backend's GPU buffers). */
  readonly kind: string;
  /** Adds a variable; its state is created at its first step (or restored from `init.state`). Returns its index. */
  join(variable: tf.Variable, init: JoinInit): number;
  /** One step over `items` (distinct variables); the engine's other variables are left alone. */
  step(items: StepItem[]): void;
  /** The state of every variable, in the core checkpoint format (tensor i = join index i). */
  stateDict(): Promise<StateDict>;
  /** Bytes of optimizer state (codes, absmax, float32 states) of variable `index`. */
  stateBytes(index: number): number;
  /** Steps taken on variable `index`. */
  stepCount(index: number): number;
  /** Frees variable `index`'s state for good (a disposed variable); the other variables' state and step counts are untouched. */
  release(index: number): void;
  /** Changes the options of every variable (e.g. a new learning rate). */
  setOptions(options: object): void;
  /** Why this engine cannot step on the current tfjs backend, or null. */
  unusableHere(): string | null;
  /** Releases the engine's state (GPU buffers on WebGPU). */
  dispose(): void;
}

/** The engine for the current tfjs backend: WebGPU on tfjs's webgpu backend, else the CPU optimizer. */
export function createEngine<O extends BaseOptions>(cls: CoreClass<O>, options: O): TfjsEngine {
  return (tf.engine().backendName === 'webgpu' ? createWebgpuEngine(cls, options) : null) ?? new CpuEngine(cls, options);
}
