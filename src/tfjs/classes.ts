/**
 * The optimizers as `tf.Optimizer` subclasses, registered for tfjs serialization under
 * 'bitopt.<Class>' (tfjs's own 'Adam', 'SGD', ... keep their names). A class takes one options
 * object, bitsandbytes-style with bitopt's defaults (`new Adam8bit({ lr: 1e-3 })`, eps 1e-8),
 * in bitopt's keys or tfjs's (`learningRate`, `beta1`, ...; ./tfjs-names.ts).
 *
 * The factories named after a `tf.train` factory (adam, sgd, momentum, ...) are in
 * ./factories.ts, with tf.train's signatures and defaults. Here are the factories of the rules
 * tf.train does not have (adamW, lion, lamb, lars, ademamix, radam): they take the learning rate
 * and then the core options (betas, eps, weightDecay, blockSize, optimBits, min8bitSize,
 * percentileClipping, ...), with bitsandbytes' defaults.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as core from '../optim/classes.js';
import type { AdEMAMixOptions, AdagradOptions, AdamOptions, LAMBOptions, LARSOptions, LionOptions, RMSpropOptions, SGDOptions } from '../optim/classes.js';
import { BitoptOptimizer } from './optimizer.js';
import { savedClassName } from './saved-name.js';

/** 8-bit Adam, as a tf.Optimizer. */
export class Adam8bit extends BitoptOptimizer<AdamOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.Adam8bit';
  constructor(options?: AdamOptions) {
    super(core.Adam8bit, options);
  }
}
/** Adam with float32 state, as a tf.Optimizer. */
export class Adam extends BitoptOptimizer<AdamOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.Adam';
  constructor(options?: AdamOptions) {
    super(core.Adam, options);
  }
}
/** 8-bit AdamW (decoupled weight decay 1e-2 by default), as a tf.Optimizer. */
export class AdamW8bit extends BitoptOptimizer<AdamOptions> {
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.SGD8bit';
  constructor(options?: SGDOptions) {
    super(core.SGD8bit, options);
  }
}
/** SGD with momentum, float32 state, as a tf.Optimizer. */
export class SGD extends BitoptOptimizer<SGDOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.SGD';
  constructor(options?: SGDOptions) {
    super(core.SGD, options);
  }
}
/** 8-bit RMSprop, as a tf.Optimizer. */
export class RMSprop8bit extends BitoptOptimizer<RMSpropOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.RMSprop8bit';
  constructor(options?: RMSpropOptions) {
    super(core.RMSprop8bit, options);
  }
}
/** RMSprop with float32 state, as a tf.Optimizer. */
export class RMSprop extends BitoptOptimizer<RMSpropOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.RMSprop';
  constructor(options?: RMSpropOptions) {
    super(core.RMSprop, options);
  }
}
/** 8-bit Adagrad, as a tf.Optimizer. */
export class Adagrad8bit extends BitoptOptimizer<AdagradOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.Adagrad8bit';
  constructor(options?: AdagradOptions) {
    super(core.Adagrad8bit, options);
  }
}
/** Adagrad with float32 state, as a tf.Optimizer. */
export class Adagrad extends BitoptOptimizer<AdagradOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.Adagrad';
  constructor(options?: AdagradOptions) {
    super(core.Adagrad, options);
  }
}
/** 8-bit Lion, as a tf.Optimizer. */
export class Lion8bit extends BitoptOptimizer<LionOptions> {
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.AdEMAMix';
  constructor(options?: AdEMAMixOptions) {
    super(core.AdEMAMix, options);
  }
}
/** `ademamix(1e-3)`: AdEMAMix with float32 state. */
export function ademamix(learningRate?: number, options: Omit<AdEMAMixOptions, 'lr'> = {}): AdEMAMix {
  return new AdEMAMix(learningRate === undefined ? options : { ...options, lr: learningRate });
}
/** 8-bit RAdam (torch.optim.RAdam), as a tf.Optimizer. */
export class RAdam8bit extends BitoptOptimizer<AdamOptions> {
  /** The name tfjs serialization registers this class under. */
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
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.RAdam';
  constructor(options?: AdamOptions) {
    super(core.RAdam, options);
  }
}
/** `radam(1e-3)`: RAdam with float32 state. */
export function radam(learningRate?: number, options: Omit<AdamOptions, 'lr'> = {}): RAdam {
  return new RAdam(learningRate === undefined ? options : { ...options, lr: learningRate });
}

/** 4-bit Adam, as a tf.Optimizer (docs/architecture.md §1.5). */
export class Adam4bit extends BitoptOptimizer<AdamOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.Adam4bit';
  constructor(options?: AdamOptions) {
    super(core.Adam4bit, options);
  }
}

/** 4-bit AdamW (decoupled weight decay 1e-2 by default), as a tf.Optimizer (docs/architecture.md §1.5). */
export class AdamW4bit extends BitoptOptimizer<AdamOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.AdamW4bit';
  constructor(options?: AdamOptions) {
    super(core.AdamW4bit, options);
  }
}

/** 4-bit SGD with momentum, as a tf.Optimizer (docs/architecture.md §1.5). */
export class SGD4bit extends BitoptOptimizer<SGDOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.SGD4bit';
  constructor(options?: SGDOptions) {
    super(core.SGD4bit, options);
  }
}

/** 4-bit RMSprop, as a tf.Optimizer (docs/architecture.md §1.5). */
export class RMSprop4bit extends BitoptOptimizer<RMSpropOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.RMSprop4bit';
  constructor(options?: RMSpropOptions) {
    super(core.RMSprop4bit, options);
  }
}

/** 4-bit Adagrad, as a tf.Optimizer (docs/architecture.md §1.5). */
export class Adagrad4bit extends BitoptOptimizer<AdagradOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.Adagrad4bit';
  constructor(options?: AdagradOptions) {
    super(core.Adagrad4bit, options);
  }
}

/** 4-bit Lion, as a tf.Optimizer (docs/architecture.md §1.5). */
export class Lion4bit extends BitoptOptimizer<LionOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.Lion4bit';
  constructor(options?: LionOptions) {
    super(core.Lion4bit, options);
  }
}

/** 4-bit LAMB, as a tf.Optimizer (docs/architecture.md §1.5). */
export class LAMB4bit extends BitoptOptimizer<LAMBOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.LAMB4bit';
  constructor(options?: LAMBOptions) {
    super(core.LAMB4bit, options);
  }
}

/** 4-bit LARS, as a tf.Optimizer (docs/architecture.md §1.5). */
export class LARS4bit extends BitoptOptimizer<LARSOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.LARS4bit';
  constructor(options?: LARSOptions) {
    super(core.LARS4bit, options);
  }
}

/** 4-bit AdEMAMix, as a tf.Optimizer (docs/architecture.md §1.5). */
export class AdEMAMix4bit extends BitoptOptimizer<AdEMAMixOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.AdEMAMix4bit';
  constructor(options?: AdEMAMixOptions) {
    super(core.AdEMAMix4bit, options);
  }
}

/** 4-bit RAdam, as a tf.Optimizer (docs/architecture.md §1.5). */
export class RAdam4bit extends BitoptOptimizer<AdamOptions> {
  /** The name tfjs serialization registers this class under. */
  static className = 'bitopt.RAdam4bit';
  constructor(options?: AdamOptions) {
    super(core.RAdam4bit, options);
  }
}

/** `adamW4bit(1e-3)`: 4-bit AdamW (decoupled weight decay 1e-2 by default). */
export function adamW4bit(learningRate?: number, options: Omit<AdamOptions, 'lr'> = {}): AdamW4bit {
  return new AdamW4bit(learningRate === undefined ? options : { ...options, lr: learningRate });
}

/** tfjs's properties of the classes whose rule has betas and eps (./tfjs-names.ts). */
interface BetasEpsilon {
  /** tfjs's `beta1`: `betas[0]` in force (assigning it changes the option from the next step). */
  beta1: number;
  /** tfjs's `beta2`: `betas[1]` in force (assigning it changes the option from the next step). */
  beta2: number;
  /** tfjs's `epsilon`: `eps` in force (assigning it changes the option from the next step). */
  epsilon: number;
}
/** The property of the momentum classes (SGD, LARS). */
interface Momentum {
  /** tfjs's `momentum`: the option in force (assigning it changes it from the next step). */
  momentum: number;
}
/* eslint-disable @typescript-eslint/no-empty-object-type -- declaration merging: the properties BitoptOptimizer defines at run time */
export interface Adam8bit extends BetasEpsilon {}
export interface Adam extends BetasEpsilon {}
export interface AdamW8bit extends BetasEpsilon {}
export interface AdamW extends BetasEpsilon {}
export interface LAMB8bit extends BetasEpsilon {}
export interface LAMB extends BetasEpsilon {}
export interface RAdam8bit extends BetasEpsilon {}
export interface RAdam extends BetasEpsilon {}
export interface AdEMAMix8bit extends BetasEpsilon {
  /** `betas[2]` in force, the slow EMA's (assigning it changes the option from the next step). */
  beta3: number;
}
export interface AdEMAMix extends BetasEpsilon {
  /** `betas[2]` in force, the slow EMA's (assigning it changes the option from the next step). */
  beta3: number;
}
export interface Lion8bit {
  /** tfjs's `beta1`: `betas[0]` in force (assigning it changes the option from the next step). */
  beta1: number;
  /** tfjs's `beta2`: `betas[1]` in force (assigning it changes the option from the next step). */
  beta2: number;
}
export interface Lion {
  /** tfjs's `beta1`: `betas[0]` in force (assigning it changes the option from the next step). */
  beta1: number;
  /** tfjs's `beta2`: `betas[1]` in force (assigning it changes the option from the next step). */
  beta2: number;
}
export interface SGD8bit extends Momentum {}
export interface SGD extends Momentum {}
export interface LARS8bit extends Momentum {}
export interface LARS extends Momentum {}
export interface RMSprop8bit {
  /** tfjs's `epsilon`: `eps` in force (assigning it changes the option from the next step). */
  epsilon: number;
}
export interface RMSprop {
  /** tfjs's `epsilon`: `eps` in force (assigning it changes the option from the next step). */
  epsilon: number;
}
export interface Adagrad8bit {
  /** tfjs's `epsilon`: `eps` in force (assigning it changes the option from the next step). */
  epsilon: number;
}
export interface Adagrad {
  /** tfjs's `epsilon`: `eps` in force (assigning it changes the option from the next step). */
  epsilon: number;
}
export interface Adam4bit extends BetasEpsilon {}
export interface AdamW4bit extends BetasEpsilon {}
export interface SGD4bit extends Momentum {}
export interface RMSprop4bit {
  /** tfjs's `epsilon`: `eps` in force (assigning it changes the option from the next step). */
  epsilon: number;
}
export interface Adagrad4bit {
  /** tfjs's `epsilon`: `eps` in force (assigning it changes the option from the next step). */
  epsilon: number;
}
export interface Lion4bit {
  /** tfjs's `beta1`: `betas[0]` in force (assigning it changes the option from the next step). */
  beta1: number;
  /** tfjs's `beta2`: `betas[1]` in force (assigning it changes the option from the next step). */
  beta2: number;
}
export interface LAMB4bit extends BetasEpsilon {}
export interface LARS4bit extends Momentum {}
export interface AdEMAMix4bit extends BetasEpsilon {
  /** `betas[2]` in force, the slow EMA's (assigning it changes the option from the next step). */
  beta3: number;
}
export interface RAdam4bit extends BetasEpsilon {}
/* eslint-enable @typescript-eslint/no-empty-object-type */

/** Every class, by its core name. */
export const TFJS_OPTIMIZERS = { Adam8bit, Adam, AdamW8bit, AdamW, SGD8bit, SGD, RMSprop8bit, RMSprop, Adagrad8bit, Adagrad, Lion8bit, Lion, LAMB8bit, LAMB, LARS8bit, LARS, AdEMAMix8bit, AdEMAMix, RAdam8bit, RAdam, Adam4bit, AdamW4bit, SGD4bit, RMSprop4bit, Adagrad4bit, Lion4bit, LAMB4bit, LARS4bit, AdEMAMix4bit, RAdam4bit } as const;

for (const cls of Object.values(TFJS_OPTIMIZERS)) {
  tf.serialization.registerClass(cls);
  // The name model.save writes (./saved-name.ts) loads the same class.
  tf.serialization.SerializationMap.getMap().classNameMap[savedClassName(cls.className)] = [cls, cls.fromConfig];
}
