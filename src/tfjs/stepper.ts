/** What the tfjs optimizer needs from one variable's optimizer on some tfjs backend. */
import type * as tf from '@tensorflow/tfjs-core';
import type { BaseOptions, Optimizer, Params } from '../optim/optimizer.js';
import type { StateDict } from '../optim/statedict.js';

/** A core optimizer class, e.g. Adam8bit. */
export type CoreClass<O extends BaseOptions> = new (params: Params<O>, options?: O) => Optimizer<O>;

export interface VariableStepper {
  /** 'cpu' (values stepped on the CPU) or 'webgpu' (stepped on the backend's GPU buffers). */
  readonly kind: string;
  /** Applies one step to `variable`; `grad` is float32 with the variable's shape. */
  step(variable: tf.Variable, grad: tf.Tensor): void;
  /** The state in the core checkpoint format (one tensor). */
  stateDict(): Promise<StateDict>;
  loadStateDict(dict: StateDict): void;
  /** Bytes of optimizer state (codes, absmax, float32 states). */
  stateBytes(): number;
  stepCount(): number;
  setOptions(options: object): void;
  dispose(): void;
}
