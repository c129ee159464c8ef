/**
 * The optimizers as `tf.Optimizer` subclasses, registered for tfjs serialization under
 * 'bitopt.<Class>' (tfjs's own 'Adam', 'SGD', ... keep their names), and lower-case factories:
 *
 *   model.compile({ optimizer: tf.train.adam(1e-3), loss });   // before
 *   model.compile({ optimizer: bitopt.adam8bit(1e-3), loss });  // after
 *
 * The factories take the learning rate and then the core options (betas, eps, weightDecay,
 * blockSize, optimBits, min8bitSize, percentileClipping, ...).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as core from '../optim/classes.js';
import type { AdEMAMixOptions, AdagradOptions, AdamOptions, LAMBOptions, LARSOptions, LionOptions, RMSpropOptions, SGDOptions } from '../optim/classes.js';
import { BitoptOptimizer } from './optimizer.js';

/** 8-bit Adam, as a tf.Optimizer. */
export class Adam8bit extends BitoptOptimizer<AdamOptions> {
  static className = 'bitopt.Adam8bit';
  constructor(options?: AdamOptions) {
    super(core.Adam8bit, options);
  }
}
/** `adam8bit(1e-3)`: 8-bit Adam. */
export function adam8bit(learningRate?: number, options: Omit<AdamOptions, 'lr'> = {}): Adam8bit {
  return new Adam8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** Adam with float32 state, as a tf.Optimizer. */
export class Adam extends BitoptOptimizer<AdamOptions> {
  static className = 'bitopt.Adam';
  constructor(options?: AdamOptions) {
    super(core.Adam, options);
  }
}
/** `adam(1e-3)`: Adam with float32 state. */
export function adam(learningRate?: number, options: Omit<AdamOptions, 'lr'> = {}): Adam {
  return new Adam(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** 8-bit AdamW (decoupled weight decay 1e-2 by default), as a tf.Optimizer. */
export class AdamW8bit extends BitoptOptimizer<AdamOptions> {
  static className = 'bitopt.AdamW8bit';
  constructor(options?: AdamOptions) {
    super(core.AdamW8bit, options);
  }
}
/** `adamW8bit(1e-3)`: 8-bit AdamW (decoupled weight decay 1e-2 by default). */
export function adamW8bit(learningRate?: number, options: Omit<AdamOptions, 'lr'> = {}): AdamW8bit {
  return new AdamW8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** AdamW with float32 state, as a tf.Optimizer. */
export class AdamW extends BitoptOptimizer<AdamOptions> {
  static className = 'bitopt.AdamW';
  constructor(options?: AdamOptions) {
    super(core.AdamW, options);
  }
}
/** `adamW(1e-3)`: AdamW with float32 state. */
export function adamW(learningRate?: number, options: Omit<AdamOptions, 'lr'> = {}): AdamW {
  return new AdamW(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** 8-bit SGD with momentum, as a tf.Optimizer. */
export class SGD8bit extends BitoptOptimizer<SGDOptions> {
  static className = 'bitopt.SGD8bit';
  constructor(options?: SGDOptions) {
    super(core.SGD8bit, options);
  }
}
/** `sgd8bit(1e-3)`: 8-bit SGD with momentum. */
export function sgd8bit(learningRate?: number, options: Omit<SGDOptions, 'lr'> = {}): SGD8bit {
  return new SGD8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** SGD with momentum, float32 state, as a tf.Optimizer. */
export class SGD extends BitoptOptimizer<SGDOptions> {
  static className = 'bitopt.SGD';
  constructor(options?: SGDOptions) {
    super(core.SGD, options);
  }
}
/** `sgd(1e-3)`: SGD with momentum, float32 state. */
export function sgd(learningRate?: number, options: Omit<SGDOptions, 'lr'> = {}): SGD {
  return new SGD(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** 8-bit RMSprop, as a tf.Optimizer. */
export class RMSprop8bit extends BitoptOptimizer<RMSpropOptions> {
  static className = 'bitopt.RMSprop8bit';
  constructor(options?: RMSpropOptions) {
    super(core.RMSprop8bit, options);
  }
}
/** `rmsprop8bit(1e-3)`: 8-bit RMSprop. */
export function rmsprop8bit(learningRate?: number, options: Omit<RMSpropOptions, 'lr'> = {}): RMSprop8bit {
  return new RMSprop8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** RMSprop with float32 state, as a tf.Optimizer. */
export class RMSprop extends BitoptOptimizer<RMSpropOptions> {
  static className = 'bitopt.RMSprop';
  constructor(options?: RMSpropOptions) {
    super(core.RMSprop, options);
  }
}
/** `rmsprop(1e-3)`: RMSprop with float32 state. */
export function rmsprop(learningRate?: number, options: Omit<RMSpropOptions, 'lr'> = {}): RMSprop {
  return new RMSprop(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** 8-bit Adagrad, as a tf.Optimizer. */
export class Adagrad8bit extends BitoptOptimizer<AdagradOptions> {
  static className = 'bitopt.Adagrad8bit';
  constructor(options?: AdagradOptions) {
    super(core.Adagrad8bit, options);
  }
}
/** `adagrad8bit(1e-3)`: 8-bit Adagrad. */
export function adagrad8bit(learningRate?: number, options: Omit<AdagradOptions, 'lr'> = {}): Adagrad8bit {
  return new Adagrad8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** Adagrad with float32 state, as a tf.Optimizer. */
export class Adagrad extends BitoptOptimizer<AdagradOptions> {
  static className = 'bitopt.Adagrad';
  constructor(options?: AdagradOptions) {
    super(core.Adagrad, options);
  }
}
/** `adagrad(1e-3)`: Adagrad with float32 state. */
export function adagrad(learningRate?: number, options: Omit<AdagradOptions, 'lr'> = {}): Adagrad {
  return new Adagrad(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** 8-bit Lion, as a tf.Optimizer. */
export class Lion8bit extends BitoptOptimizer<LionOptions> {
  static className = 'bitopt.Lion8bit';
  constructor(options?: LionOptions) {
    super(core.Lion8bit, options);
  }
}
/** `lion8bit(1e-3)`: 8-bit Lion. */
export function lion8bit(learningRate?: number, options: Omit<LionOptions, 'lr'> = {}): Lion8bit {
  return new Lion8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** Lion with float32 state, as a tf.Optimizer. */
export class Lion extends BitoptOptimizer<LionOptions> {
  static className = 'bitopt.Lion';
  constructor(options?: LionOptions) {
    super(core.Lion, options);
  }
}
/** `lion(1e-3)`: Lion with float32 state. */
export function lion(learningRate?: number, options: Omit<LionOptions, 'lr'> = {}): Lion {
  return new Lion(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** 8-bit LAMB, as a tf.Optimizer. */
export class LAMB8bit extends BitoptOptimizer<LAMBOptions> {
  static className = 'bitopt.LAMB8bit';
  constructor(options?: LAMBOptions) {
    super(core.LAMB8bit, options);
  }
}
/** `lamb8bit(1e-3)`: 8-bit LAMB. */
export function lamb8bit(learningRate?: number, options: Omit<LAMBOptions, 'lr'> = {}): LAMB8bit {
  return new LAMB8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** LAMB with float32 state, as a tf.Optimizer. */
export class LAMB extends BitoptOptimizer<LAMBOptions> {
  static className = 'bitopt.LAMB';
  constructor(options?: LAMBOptions) {
    super(core.LAMB, options);
  }
}
/** `lamb(1e-3)`: LAMB with float32 state. */
export function lamb(learningRate?: number, options: Omit<LAMBOptions, 'lr'> = {}): LAMB {
  return new LAMB(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** 8-bit LARS, as a tf.Optimizer. */
export class LARS8bit extends BitoptOptimizer<LARSOptions> {
  static className = 'bitopt.LARS8bit';
  constructor(options?: LARSOptions) {
    super(core.LARS8bit, options);
  }
}
/** `lars8bit(1e-3)`: 8-bit LARS. */
export function lars8bit(learningRate?: number, options: Omit<LARSOptions, 'lr'> = {}): LARS8bit {
  return new LARS8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** LARS with float32 state, as a tf.Optimizer. */
export class LARS extends BitoptOptimizer<LARSOptions> {
  static className = 'bitopt.LARS';
  constructor(options?: LARSOptions) {
    super(core.LARS, options);
  }
}
/** `lars(1e-3)`: LARS with float32 state. */
export function lars(learningRate?: number, options: Omit<LARSOptions, 'lr'> = {}): LARS {
  return new LARS(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** 8-bit AdEMAMix, as a tf.Optimizer. */
export class AdEMAMix8bit extends BitoptOptimizer<AdEMAMixOptions> {
  static className = 'bitopt.AdEMAMix8bit';
  constructor(options?: AdEMAMixOptions) {
    super(core.AdEMAMix8bit, options);
  }
}
/** `ademamix8bit(1e-3)`: 8-bit AdEMAMix. */
export function ademamix8bit(learningRate?: number, options: Omit<AdEMAMixOptions, 'lr'> = {}): AdEMAMix8bit {
  return new AdEMAMix8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** AdEMAMix with float32 state, as a tf.Optimizer. */
export class AdEMAMix extends BitoptOptimizer<AdEMAMixOptions> {
  static className = 'bitopt.AdEMAMix';
  constructor(options?: AdEMAMixOptions) {
    super(core.AdEMAMix, options);
  }
}
/** `ademamix(1e-3)`: AdEMAMix with float32 state. */
export function ademamix(learningRate?: number, options: Omit<AdEMAMixOptions, 'lr'> = {}): AdEMAMix {
  return new AdEMAMix(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** Every class, by its core name. */
/** 8-bit RAdam (torch.optim.RAdam), as a tf.Optimizer. */
export class RAdam8bit extends BitoptOptimizer<AdamOptions> {
  static className = 'bitopt.RAdam8bit';
  constructor(options?: AdamOptions) {
    super(core.RAdam8bit, options);
  }
}
/** `radam8bit(1e-3)`: 8-bit RAdam. */
export function radam8bit(learningRate?: number, options: Omit<AdamOptions, 'lr'> = {}): RAdam8bit {
  return new RAdam8bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** RAdam with float32 state, as a tf.Optimizer. */
export class RAdam extends BitoptOptimizer<AdamOptions> {
  static className = 'bitopt.RAdam';
  constructor(options?: AdamOptions) {
    super(core.RAdam, options);
  }
}
/** `radam(1e-3)`: RAdam with float32 state. */
export function radam(learningRate?: number, options: Omit<AdamOptions, 'lr'> = {}): RAdam {
  return new RAdam(learningRate === undefined ? options : { ...options, lr: learningRate });
}

export const TFJS_OPTIMIZERS = { Adam8bit, Adam, AdamW8bit, AdamW, SGD8bit, SGD, RMSprop8bit, RMSprop, Adagrad8bit, Adagrad, Lion8bit, Lion, LAMB8bit, LAMB, LARS8bit, LARS, AdEMAMix8bit, AdEMAMix, RAdam8bit, RAdam } as const;

for (const cls of Object.values(TFJS_OPTIMIZERS)) tf.serialization.registerClass(cls);
