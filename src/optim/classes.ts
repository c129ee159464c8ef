/**
 * The public optimizer classes. Names mirror the reference library (bitsandbytes): each is
 * an update rule plus defaults. The *8bit classes default to `optimBits: 8`, the *4bit classes
 * to 4 (block-wise 4-bit states, blocks of 128 unless `blockSize` says otherwise), their float32
 * twins to 32; any of them can be switched with the `optimBits` option.
 */
import { Optimizer, type BaseOptions, type Params } from './optimizer.js';
import { adagrad, adam, ademamix, lamb, lars, lion, radam, rmsprop, sgd } from './rules/index.js';

export interface AdamOptions extends BaseOptions {
  betas?: [number, number];
  eps?: number;
}
export interface SGDOptions extends BaseOptions {
  momentum?: number;
}
export interface RMSpropOptions extends BaseOptions {
  alpha?: number;
  eps?: number;
}
export interface AdagradOptions extends BaseOptions {
  eps?: number;
}
export interface LionOptions extends BaseOptions {
  betas?: [number, number];
}
export interface LAMBOptions extends AdamOptions {
  /** Clamp of the update norm relative to the parameter norm (0 disables the trust ratio). */
  maxUnorm?: number;
}
export interface LARSOptions extends SGDOptions {
  maxUnorm?: number;
}
export interface AdEMAMixOptions extends BaseOptions {
  betas?: [number, number, number];
  alpha?: number;
  eps?: number;
}

const bits4 = { optimBits: 4 } as const;
const bits8 = { optimBits: 8 } as const;
const bits32 = { optimBits: 32 } as const;
const adamW = { weightDecay: 1e-2 } as const;

export class Adam8bit extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(adam, params, options, { className: 'Adam8bit', defaults: bits8 });
  }
}
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
export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Params<SGDOptions>, options?: SGDOptions) {
    super(sgd, params, options, { className: 'SGD', defaults: bits32 });
  }
}
export class RMSprop8bit extends Optimizer<RMSpropOptions> {
  constructor(params: Params<RMSpropOptions>, options?: RMSpropOptions) {
    super(rmsprop, params, options, { className: 'RMSprop8bit', defaults: bits8 });
  }
}
export class RMSprop extends Optimizer<RMSpropOptions> {
  constructor(params: Params<RMSpropOptions>, options?: RMSpropOptions) {
    super(rmsprop, params, options, { className: 'RMSprop', defaults: bits32 });
  }
}
export class Adagrad8bit extends Optimizer<AdagradOptions> {
  constructor(params: Params<AdagradOptions>, options?: AdagradOptions) {
    super(adagrad, params, options, { className: 'Adagrad8bit', defaults: bits8 });
  }
}
export class Adagrad extends Optimizer<AdagradOptions> {
  constructor(params: Params<AdagradOptions>, options?: AdagradOptions) {
    super(adagrad, params, options, { className: 'Adagrad', defaults: bits32 });
  }
}
export class Lion8bit extends Optimizer<LionOptions> {
  constructor(params: Params<LionOptions>, options?: LionOptions) {
    super(lion, params, options, { className: 'Lion8bit', defaults: bits8 });
  }
}
export class Lion extends Optimizer<LionOptions> {
  constructor(params: Params<LionOptions>, options?: LionOptions) {
    super(lion, params, options, { className: 'Lion', defaults: bits32 });
  }
}
export class LAMB8bit extends Optimizer<LAMBOptions> {
  constructor(params: Params<LAMBOptions>, options?: LAMBOptions) {
    super(lamb, params, options, { className: 'LAMB8bit', defaults: bits8 });
  }
}
export class LAMB extends Optimizer<LAMBOptions> {
  constructor(params: Params<LAMBOptions>, options?: LAMBOptions) {
    super(lamb, params, options, { className: 'LAMB', defaults: bits32 });
  }
}
export class LARS8bit extends Optimizer<LARSOptions> {
  constructor(params: Params<LARSOptions>, options?: LARSOptions) {
    super(lars, params, options, { className: 'LARS8bit', defaults: bits8 });
  }
}
export class LARS extends Optimizer<LARSOptions> {
  constructor(params: Params<LARSOptions>, options?: LARSOptions) {
    super(lars, params, options, { className: 'LARS', defaults: bits32 });
  }
}
export class AdEMAMix8bit extends Optimizer<AdEMAMixOptions> {
  constructor(params: Params<AdEMAMixOptions>, options?: AdEMAMixOptions) {
    super(ademamix, params, options, { className: 'AdEMAMix8bit', defaults: bits8 });
  }
}
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
export class SGD4bit extends Optimizer<SGDOptions> {
  constructor(params: Params<SGDOptions>, options?: SGDOptions) {
    super(sgd, params, options, { className: 'SGD4bit', defaults: bits4 });
  }
}
export class RMSprop4bit extends Optimizer<RMSpropOptions> {
  constructor(params: Params<RMSpropOptions>, options?: RMSpropOptions) {
    super(rmsprop, params, options, { className: 'RMSprop4bit', defaults: bits4 });
  }
}
export class Adagrad4bit extends Optimizer<AdagradOptions> {
  constructor(params: Params<AdagradOptions>, options?: AdagradOptions) {
    super(adagrad, params, options, { className: 'Adagrad4bit', defaults: bits4 });
  }
}
export class Lion4bit extends Optimizer<LionOptions> {
  constructor(params: Params<LionOptions>, options?: LionOptions) {
    super(lion, params, options, { className: 'Lion4bit', defaults: bits4 });
  }
}
export class LAMB4bit extends Optimizer<LAMBOptions> {
  constructor(params: Params<LAMBOptions>, options?: LAMBOptions) {
    super(lamb, params, options, { className: 'LAMB4bit', defaults: bits4 });
  }
}
export class LARS4bit extends Optimizer<LARSOptions> {
  constructor(params: Params<LARSOptions>, options?: LARSOptions) {
    super(lars, params, options, { className: 'LARS4bit', defaults: bits4 });
  }
}
export class AdEMAMix4bit extends Optimizer<AdEMAMixOptions> {
  constructor(params: Params<AdEMAMixOptions>, options?: AdEMAMixOptions) {
    super(ademamix, params, options, { className: 'AdEMAMix4bit', defaults: bits4 });
  }
}
export class RAdam4bit extends Optimizer<AdamOptions> {
  constructor(params: Params<AdamOptions>, options?: AdamOptions) {
    super(radam, params, options, { className: 'RAdam4bit', defaults: bits4 });
  }
}
