/**
 * The public optimizer classes. Names mirror the reference library (bitsandbytes): each is
 * an update rule plus defaults. The *8bit classes default to `optimBits: 8`, the *4bit classes
 * to 4 (block-wise 4-bit states, blocks of 128 unless `blockSize` says otherwise), their float32
 * twins to 32; any of them can be switched with the `optimBits` option.
 */
import { Optimizer, type BaseOptions, type Params } from './optimizer.js';
import { adagrad, adam, ademamix, lamb, lars, lion, radam, rmsprop, sgd } from './rules/index.js';

/** Options of Adam, AdamW and RAdam (and, with `maxUnorm`, LAMB), each in every precision. */
export interface AdamOptions extends BaseOptions {
  /** Decay rates [b1, b2] of the first and second moment, each in [0, 1). Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Added to the root of the second moment, finite, at least 1e-30. Default 1e-8. */
  eps?: number;
}
/** Options of SGD (with momentum) and, with `maxUnorm`, LARS. */
export interface SGDOptions extends BaseOptions {
  /** Momentum factor in [0, 1) (0: plain SGD, whose buffer is the gradient). Default 0.9. */
  momentum?: number;
}
/** Options of RMSprop (bitsandbytes' form: no momentum, not centered). */
export interface RMSpropOptions extends BaseOptions {
  /** Decay rate of the squared-gradient average, in [0, 1). Default 0.99. */
  alpha?: number;
  /** Added to the root of the average, finite, at least 1e-30. Default 1e-8. */
  eps?: number;
}
/** Options of Adagrad (accumulator starts at 0). */
export interface AdagradOptions extends BaseOptions {
  /** Added to the root of the accumulator, finite, at least 1e-30. Default 1e-10. */
  eps?: number;
}
/** Options of Lion. */
export interface LionOptions extends BaseOptions {
  /** [b1, b2], each in [0, 1): b1 mixes the update's sign, b2 decays the momentum. Default [0.9, 0.99]. */
  betas?: [number, number];
}
/** Options of LAMB: Adam's plus the trust-ratio clamp. */
export interface LAMBOptions extends AdamOptions {
  /** Clamp of the update norm relative to the parameter norm (||update|| <= maxUnorm·||p||), finite, at least 0 (0 disables the trust ratio). Default 1. */
  maxUnorm?: number;
}
/** Options of LARS: SGD's plus the trust-ratio clamp. */
export interface LARSOptions extends SGDOptions {
  /** Clamp of the update norm relative to the parameter norm, finite, at least 0 (0 disables the trust ratio). Default 0.02. */
  maxUnorm?: number;
}
/** Options of AdEMAMix. */
export interface AdEMAMixOptions extends BaseOptions {
  /** [b1, b2, b3], each in [0, 1): fast EMA, second moment, slow EMA. Default [0.9, 0.999, 0.9999]. */
  betas?: [number, number, number];
  /** Weight of the slow EMA in the update, finite, at least 0. Default 5. */
  alpha?: number;
  /** Added to the root of the second moment, finite, at least 1e-30. Default 1e-8. */
  eps?: number;
}

const bits4 = { optimBits: 4 } as const;
const bits8 = { optimBits: 8 } as const;
const bits32 = { optimBits: 32 } as const;
const adamW = { weightDecay: 1e-2 } as const;

/** Adam with block-wise 8-bit states (m and v): about 2.03 B/param of state at blocks of 256 (float32: 8). */
export class Adam8bit extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(adam, params, options, { className: 'Adam8bit', defaults: bits8 });
  }
}
/** Adam with float32 states (the 32-bit twin of Adam8bit). */
export class Adam extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(adam, params, options, { className: 'Adam', defaults: bits32 });
  }
}
/** Adam with decoupled weight decay 1e-2 by default (the update is the same rule). */
export class AdamW8bit extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(adam, params, options, { className: 'AdamW8bit', defaults: { ...bits8, ...adamW } });
  }
}
/** AdamW with float32 states (weight decay 1e-2 by default). */
export class AdamW extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(adam, params, options, { className: 'AdamW', defaults: { ...bits32, ...adamW } });
  }
}
/** SGD with momentum (the state is the momentum buffer). */
export class SGD8bit extends Optimizer<SGDOptions> {
  constructor(params: Params<SGDOptions>, options?: SGDOptions) {
    super(sgd, params, options, { className: 'SGD8bit', defaults: bits8 });
  }
}
/** SGD with momentum, float32 state. */
export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Params<SGDOptions>, options?: SGDOptions) {
    super(sgd, params, options, { className: 'SGD', defaults: bits32 });
  }
}
/** RMSprop with a block-wise 8-bit state (v, on the unsigned map). */
export class RMSprop8bit extends Optimizer<RMSpropOptions> {
  constructor(params: Params<RMSpropOptions>, options?: RMSpropOptions) {
    super(rmsprop, params, options, { className: 'RMSprop8bit', defaults: bits8 });
  }
}
/** RMSprop with a float32 state. */
export class RMSprop extends Optimizer<RMSpropOptions> {
  constructor(params: Params<RMSpropOptions>, options?: RMSpropOptions) {
    super(rmsprop, params, options, { className: 'RMSprop', defaults: bits32 });
  }
}
/** Adagrad with a block-wise 8-bit accumulator. */
export class Adagrad8bit extends Optimizer<AdagradOptions> {
  constructor(params: Params<AdagradOptions>, options?: AdagradOptions) {
    super(adagrad, params, options, { className: 'Adagrad8bit', defaults: bits8 });
  }
}
/** Adagrad with a float32 accumulator. */
export class Adagrad extends Optimizer<AdagradOptions> {
  constructor(params: Params<AdagradOptions>, options?: AdagradOptions) {
    super(adagrad, params, options, { className: 'Adagrad', defaults: bits32 });
  }
}
/** Lion (sign of an interpolated momentum) with a block-wise 8-bit momentum. */
export class Lion8bit extends Optimizer<LionOptions> {
  constructor(params: Params<LionOptions>, options?: LionOptions) {
    super(lion, params, options, { className: 'Lion8bit', defaults: bits8 });
  }
}
/** Lion with a float32 momentum. */
export class Lion extends Optimizer<LionOptions> {
  constructor(params: Params<LionOptions>, options?: LionOptions) {
    super(lion, params, options, { className: 'Lion', defaults: bits32 });
  }
}
/** LAMB (Adam's direction scaled by a per-tensor trust ratio) with block-wise 8-bit states. */
export class LAMB8bit extends Optimizer<LAMBOptions> {
  constructor(params: Params<LAMBOptions>, options?: LAMBOptions) {
    super(lamb, params, options, { className: 'LAMB8bit', defaults: bits8 });
  }
}
/** LAMB with float32 states. */
export class LAMB extends Optimizer<LAMBOptions> {
  constructor(params: Params<LAMBOptions>, options?: LAMBOptions) {
    super(lamb, params, options, { className: 'LAMB', defaults: bits32 });
  }
}
/** LARS (momentum SGD scaled by a per-tensor trust ratio) with a block-wise 8-bit momentum. */
export class LARS8bit extends Optimizer<LARSOptions> {
  constructor(params: Params<LARSOptions>, options?: LARSOptions) {
    super(lars, params, options, { className: 'LARS8bit', defaults: bits8 });
  }
}
/** LARS with a float32 momentum. */
export class LARS extends Optimizer<LARSOptions> {
  constructor(params: Params<LARSOptions>, options?: LARSOptions) {
    super(lars, params, options, { className: 'LARS', defaults: bits32 });
  }
}
/** AdEMAMix (Adam plus a slow EMA of the gradient) with block-wise 8-bit states (m, v, m2). */
export class AdEMAMix8bit extends Optimizer<AdEMAMixOptions> {
  constructor(params: Params<AdEMAMixOptions>, options?: AdEMAMixOptions) {
    super(ademamix, params, options, { className: 'AdEMAMix8bit', defaults: bits8 });
  }
}
/** AdEMAMix with float32 states. */
export class AdEMAMix extends Optimizer<AdEMAMixOptions> {
  constructor(params: Params<AdEMAMixOptions>, options?: AdEMAMixOptions) {
    super(ademamix, params, options, { className: 'AdEMAMix', defaults: bits32 });
  }
}
/** RAdam (torch.optim.RAdam): Adam with its adaptive step rectified, plain momentum for the first steps; L2 weight decay. */
export class RAdam8bit extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(radam, params, options, { className: 'RAdam8bit', defaults: bits8 });
  }
}
/** RAdam with float32 states. */
export class RAdam extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(radam, params, options, { className: 'RAdam', defaults: bits32 });
  }
}

// ---- 4-bit twins (docs/architecture.md §1.5): the same rules with block-wise 4-bit states ----
/** Adam with 4-bit states: about 1.06 B/param of state at the default block of 128 (8-bit: 2.03, float32: 8). */
export class Adam4bit extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(adam, params, options, { className: 'Adam4bit', defaults: bits4 });
  }
}
/** AdamW (weight decay 1e-2 by default) with 4-bit states. */
export class AdamW4bit extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(adam, params, options, { className: 'AdamW4bit', defaults: { ...bits4, ...adamW } });
  }
}
/** SGD with momentum, block-wise 4-bit momentum (blocks of 128 by default). */
export class SGD4bit extends Optimizer<SGDOptions> {
  constructor(params: Params<SGDOptions>, options?: SGDOptions) {
    super(sgd, params, options, { className: 'SGD4bit', defaults: bits4 });
  }
}
/** RMSprop with a block-wise 4-bit state. */
export class RMSprop4bit extends Optimizer<RMSpropOptions> {
  constructor(params: Params<RMSpropOptions>, options?: RMSpropOptions) {
    super(rmsprop, params, options, { className: 'RMSprop4bit', defaults: bits4 });
  }
}
/** Adagrad with a block-wise 4-bit accumulator. */
export class Adagrad4bit extends Optimizer<AdagradOptions> {
  constructor(params: Params<AdagradOptions>, options?: AdagradOptions) {
    super(adagrad, params, options, { className: 'Adagrad4bit', defaults: bits4 });
  }
}
/** Lion with a block-wise 4-bit momentum. */
export class Lion4bit extends Optimizer<LionOptions> {
  constructor(params: Params<LionOptions>, options?: LionOptions) {
    super(lion, params, options, { className: 'Lion4bit', defaults: bits4 });
  }
}
/** LAMB with block-wise 4-bit states. */
export class LAMB4bit extends Optimizer<LAMBOptions> {
  constructor(params: Params<LAMBOptions>, options?: LAMBOptions) {
    super(lamb, params, options, { className: 'LAMB4bit', defaults: bits4 });
  }
}
/** LARS with a block-wise 4-bit momentum. */
export class LARS4bit extends Optimizer<LARSOptions> {
  constructor(params: Params<LARSOptions>, options?: LARSOptions) {
    super(lars, params, options, { className: 'LARS4bit', defaults: bits4 });
  }
}
/** AdEMAMix with block-wise 4-bit states. */
export class AdEMAMix4bit extends Optimizer<AdEMAMixOptions> {
  constructor(params: Params<AdEMAMixOptions>, options?: AdEMAMixOptions) {
    super(ademamix, params, options, { className: 'AdEMAMix4bit', defaults: bits4 });
  }
}
/** RAdam with block-wise 4-bit states. */
export class RAdam4bit extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(radam, params, options, { className: 'RAdam4bit', defaults: bits4 });
  }
}
