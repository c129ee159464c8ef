/**
 * The `tf.train` factories with tfjs's signatures, defaults and meaning, in every state
 * precision: `bitopt.adam(learningRate, beta1, beta2, epsilon)` is `tf.train.adam` with float32
 * state, `bitopt.adam8bit(...)` the same with 8-bit state. After tf.train's positional arguments
 * an options object may follow with bitopt's own options (`blockSize`, `min8bitSize`,
 * `percentileClipping`, `weightDecay`, ...): `bitopt.adam8bit(1e-3, { blockSize: 2048 })` or
 * `bitopt.adam8bit(2e-4, 0.5, 0.999, 1e-7, { min8bitSize: 0 })`. A number in a position is
 * tf.train's argument there; the first object ends the positional arguments.
 *
 * One signature per tf.train factory (TF_TRAIN), and one line per factory and precision binding
 * it to a class: a 4-bit Adam is `export const adam4bit = tfjsFactory(TF_TRAIN.adam, Adam4bit)`.
 * Where bitopt's rule cannot compute what tf.train computes, the factory throws an Error that
 * says why and what to use instead: it never trains something else under tfjs's name.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Adam, Adam4bit, Adam8bit, SGD, SGD4bit, SGD8bit } from './classes.js';

type Arg = number | boolean | null | undefined;

/** How one tf.train factory's arguments become bitopt options. */
export interface TfjsSignature {
  /** tf.train's factory name, e.g. 'adam'. */
  readonly name: string;
  /** tf.train's positional parameters, in order, and the type each takes. */
  readonly params: readonly (readonly [name: string, type: 'number' | 'boolean'])[];
  /** Parameters tf.train requires (it has no default for them). */
  readonly required?: readonly string[];
  /** Why bitopt cannot compute this tf.train optimizer (the factory throws this), if it cannot. */
  readonly unsupported?: string;
  /** tf.train's defaults as bitopt options (computed at the call: epsilon is the backend's). */
  defaults(): Record<string, unknown>;
  /** The options the given arguments set (only those given); throws for a value bitopt cannot honour. */
  options(args: Readonly<Record<string, Arg>>, who: string): Record<string, unknown>;
}

/** tfjs's default epsilon: the current backend's (`1e-7` on cpu, wasm, webgl with float32, webgpu), as tf.train takes it. */
const backendEpsilon = () => tf.backend().epsilon();
const given = (v: Arg): v is number | boolean => v !== undefined && v !== null;

/** bitopt's rule that has what tf.train's lacks, for the messages. */
const RULES_DIR = 'src/optim/rules';

/** tf.train's factory signatures, one `TfjsSignature` each (adam, sgd, momentum; rmsprop, adagrad, adadelta, adamax are marked `unsupported`): bind one to a class with `tfjsFactory`. */
export const TF_TRAIN = {
  adam: {
    name: 'adam',
    params: [['learningRate', 'number'], ['beta1', 'number'], ['beta2', 'number'], ['epsilon', 'number']],
    defaults: () => ({ lr: 0.001, betas: [0.9, 0.999], eps: backendEpsilon() }),
    options(a) {
      const o: Record<string, unknown> = {};
      if (given(a.learningRate)) o.lr = a.learningRate;
      if (given(a.beta1) || given(a.beta2)) o.betas = [given(a.beta1) ? a.beta1 : 0.9, given(a.beta2) ? a.beta2 : 0.999];
      if (given(a.epsilon)) o.eps = a.epsilon;
      return o;
    },
  },
  sgd: {
    name: 'sgd',
    params: [['learningRate', 'number']],
    required: ['learningRate'],
    // Plain SGD is bitopt's SGD rule with momentum 0 (its buffer is then the gradient itself).
    defaults: () => ({ momentum: 0 }),
    options: (a) => (given(a.learningRate) ? { lr: a.learningRate } : {}),
  },
  momentum: {
    name: 'momentum',
    params: [['learningRate', 'number'], ['momentum', 'number'], ['useNesterov', 'boolean']],
    required: ['learningRate', 'momentum'],
    defaults: () => ({}),
    options(a, who) {
      if (a.useNesterov === true) {
        throw new Error(`${who}: useNesterov = true is not supported: bitopt's SGD rule (${RULES_DIR}/sgd.ts) has no Nesterov variant; pass useNesterov false, or use tf.train.momentum for Nesterov momentum`);
      }
      const o: Record<string, unknown> = {};
      if (given(a.learningRate)) o.lr = a.learningRate;
      if (given(a.momentum)) o.momentum = a.momentum;
      return o;
    },
  },
  rmsprop: {
    name: 'rmsprop',
    params: [['learningRate', 'number'], ['decay', 'number'], ['momentum', 'number'], ['epsilon', 'number'], ['centered', 'boolean']],
    unsupported:
      `tf.train.rmsprop computes p -= m, m = momentum·m + lr·g/sqrt(v + epsilon) (epsilon inside the square root, a momentum buffer, optionally centered); ` +
      `bitopt's RMSprop rule (${RULES_DIR}/rmsprop.ts) is bitsandbytes' p -= lr·g/(sqrt(v) + eps), without momentum or centering. ` +
      `For bitsandbytes' RMSprop use new bitopt.RMSprop8bit({ lr, alpha, eps }); for tfjs's, tf.train.rmsprop`,
    defaults: () => ({}),
    options: () => ({}),
  },
  adagrad: {
    name: 'adagrad',
    params: [['learningRate', 'number'], ['initialAccumulatorValue', 'number']],
    unsupported:
      `tf.train.adagrad starts its accumulator at initialAccumulatorValue (0.1) and computes p -= lr·g/sqrt(v + epsilon); ` +
      `bitopt's Adagrad rule (${RULES_DIR}/adagrad.ts) is bitsandbytes' (accumulator from 0, p -= lr·g/(sqrt(v) + eps)). ` +
      `For bitsandbytes' Adagrad use new bitopt.Adagrad8bit({ lr, eps }); for tfjs's, tf.train.adagrad`,
    defaults: () => ({}),
    options: () => ({}),
  },
  adadelta: {
    name: 'adadelta',
    params: [['learningRate', 'number'], ['rho', 'number'], ['epsilon', 'number']],
    unsupported: `bitopt has no Adadelta rule (${RULES_DIR}); use tf.train.adadelta`,
    defaults: () => ({}),
    options: () => ({}),
  },
  adamax: {
    name: 'adamax',
    params: [['learningRate', 'number'], ['beta1', 'number'], ['beta2', 'number'], ['epsilon', 'number'], ['decay', 'number']],
    unsupported:
      `Adamax's state u = max(beta2·u, |g|) needs a maximum, which bitopt's rule language (scripts/codegen/program.ts: + - * / sqrt sign) cannot express; ` +
      `use bitopt.adam8bit, or tf.train.adamax`,
    defaults: () => ({}),
    options: () => ({}),
  },
} as const satisfies Record<string, TfjsSignature>;

/** A plain object (the trailing options), as opposed to a positional argument. */
const isOptionsObject = (x: unknown) => x !== null && typeof x === 'object';

/**
 * tf.train's arguments, then bitopt's options object, as one bitopt options object. Every
 * argument is checked before anything is built; an option set both positionally and in the
 * options object throws.
 */
export function resolveTfjsArgs(sig: TfjsSignature, args: readonly unknown[], who: string): Record<string, unknown> {
  if (sig.unsupported) throw new Error(`${who}: not supported: ${sig.unsupported}`);
  const at = args.findIndex(isOptionsObject);
  const positional = at < 0 ? args : args.slice(0, at);
  const extra = at < 0 ? {} : (args[at] as Record<string, unknown>);
  if (at >= 0 && at < args.length - 1) throw new Error(`${who}: the options object must be the last argument (got ${args.length - at - 1} more after it)`);
  if (positional.length > sig.params.length) {
    throw new Error(`${who}: takes at most ${sig.params.length} positional arguments (${sig.params.map(([n]) => n).join(', ')}) and then an options object, got ${positional.length}`);
  }
  if (Array.isArray(extra)) throw new Error(`${who}: the options must be a plain object, got an array`);
  const named: Record<string, Arg> = {};
  sig.params.forEach(([name, type], i) => {
    const v = positional[i];
    if (v !== undefined && v !== null && typeof v !== type) {
      throw new Error(`${who}: ${name} (argument ${i + 1}) must be a ${type}, got ${typeof v === 'string' ? `the string '${v}'` : typeof v}`);
    }
    named[name] = v as Arg;
  });
  const fromArgs = sig.options(named, who);
  for (const [k, v] of Object.entries(fromArgs)) {
    if (k in extra) throw new Error(`${who}: '${k}' is given both as an argument of tf.train.${sig.name} and in the options (${JSON.stringify(v)} and ${JSON.stringify(extra[k])}): give one`);
  }
  const options = { ...sig.defaults(), ...fromArgs, ...extra };
  for (const name of sig.required ?? []) {
    const option = name === 'learningRate' ? 'lr' : name;
    if (options[option] === undefined) throw new Error(`${who}: ${name} is required (tf.train.${sig.name} has no default for it)`);
  }
  return options;
}

/** tf.train's positional parameter types, each optional from the first left out, then bitopt's options. */
type Prefixes<T extends unknown[]> = T extends [...infer H, unknown] ? T | Prefixes<H> : [];
type WithOptions<P extends unknown[], O> = Prefixes<P> extends infer X ? (X extends unknown[] ? [...X, options?: O] : never) : never;

/** bitopt's options besides those tf.train's arguments set. */
type ExtraOf<O> = Omit<O, 'lr'>;

type OptionsOf<C> = C extends new (options?: infer O) => unknown ? O : never;

/**
 * Binds `sig` to a bitopt tfjs class: a factory with tf.train's signature. Its name in messages
 * is tf.train's plus the class's precision suffix (`adam8bit`).
 */
export function tfjsFactory<P extends unknown[], C extends new (options?: never) => unknown>(sig: TfjsSignature & { readonly __args?: P }, cls: C) {
  const suffix = /\d+bit$/.exec(cls.name)?.[0] ?? '';
  const who = `bitopt.${sig.name}${suffix}`;
  return (...args: WithOptions<P, ExtraOf<OptionsOf<C>>>): InstanceType<C> =>
    new (cls as unknown as new (o: unknown) => InstanceType<C>)(resolveTfjsArgs(sig, args, who));
}

/** A factory for a tf.train optimizer bitopt cannot compute: it throws `sig.unsupported`. */
function unsupportedFactory(sig: TfjsSignature, suffix: string): (...args: unknown[]) => never {
  return (...args: unknown[]) => {
    resolveTfjsArgs(sig, args, `bitopt.${sig.name}${suffix}`);
    throw new Error('unreachable: an unsupported signature always throws');
  };
}

type Num = number | undefined;
type Eps = number | null | undefined;
type Bool = boolean | undefined;
const sig = <P extends unknown[]>(s: TfjsSignature) => s as TfjsSignature & { readonly __args?: P };

/** `tf.train.adam(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = backend's)` with float32 state. */
export const adam = tfjsFactory(sig<[learningRate: Num, beta1: Num, beta2: Num, epsilon: Eps]>(TF_TRAIN.adam), Adam);
/** `tf.train.adam(...)` with 8-bit state. */
export const adam8bit = tfjsFactory(sig<[learningRate: Num, beta1: Num, beta2: Num, epsilon: Eps]>(TF_TRAIN.adam), Adam8bit);
/** `tf.train.adam(...)` with 4-bit state (docs/architecture.md §1.5). */
export const adam4bit = tfjsFactory(sig<[learningRate: Num, beta1: Num, beta2: Num, epsilon: Eps]>(TF_TRAIN.adam), Adam4bit);
/** `tf.train.sgd(learningRate)`: plain SGD (momentum 0). */
export const sgd = tfjsFactory(sig<[learningRate: Num]>(TF_TRAIN.sgd), SGD);
/** `tf.train.sgd(learningRate)` as the 8-bit class (plain SGD has no state to quantize: the same steps as `sgd`). */
export const sgd8bit = tfjsFactory(sig<[learningRate: Num]>(TF_TRAIN.sgd), SGD8bit);
/** `tf.train.momentum(learningRate, momentum, useNesterov = false)` with float32 state (Nesterov: Error). */
export const momentum = tfjsFactory(sig<[learningRate: Num, momentum: Num, useNesterov: Bool]>(TF_TRAIN.momentum), SGD);
/** `tf.train.momentum(...)` with 8-bit state. */
export const momentum8bit = tfjsFactory(sig<[learningRate: Num, momentum: Num, useNesterov: Bool]>(TF_TRAIN.momentum), SGD8bit);
/** `tf.train.momentum(...)` with 4-bit state: 4-bit SGD does not keep parity (docs/quality-4bit.md), so it needs `{ allow4bitWithoutParity: true }` after the arguments. */
export const momentum4bit = tfjsFactory(sig<[learningRate: Num, momentum: Num, useNesterov: Bool]>(TF_TRAIN.momentum), SGD4bit);
/**
 * tf.train factories whose update bitopt's rules do not compute: each throws an Error saying
 * why and what to use (TF_TRAIN.*.unsupported). Once a rule spec for tfjs's variant exists,
 * each becomes `tfjsFactory(TF_TRAIN.<name>, <Class>)` like the others.
 */
export const rmsprop = unsupportedFactory(TF_TRAIN.rmsprop, '');
/** Throws: tf.train.rmsprop's update is not bitsandbytes' RMSprop (momentum, centering, epsilon inside the root) (use `new RMSprop8bit({ lr, alpha, eps })`). */
export const rmsprop8bit = unsupportedFactory(TF_TRAIN.rmsprop, '8bit');
/** Throws: tf.train.adagrad starts its accumulator at 0.1 and puts epsilon inside the root (use `new Adagrad({ lr, eps })` for bitsandbytes' Adagrad). */
export const adagrad = unsupportedFactory(TF_TRAIN.adagrad, '');
/** Throws: see `adagrad` (use `new Adagrad8bit({ lr, eps })`). */
export const adagrad8bit = unsupportedFactory(TF_TRAIN.adagrad, '8bit');
/** Throws: bitopt has no Adadelta rule (use tf.train.adadelta). */
export const adadelta = unsupportedFactory(TF_TRAIN.adadelta, '');
/** Throws: bitopt has no Adadelta rule (use tf.train.adadelta). */
export const adadelta8bit = unsupportedFactory(TF_TRAIN.adadelta, '8bit');
/** Throws: Adamax's max() is outside bitopt's rule language (use `adam8bit` or tf.train.adamax). */
export const adamax = unsupportedFactory(TF_TRAIN.adamax, '');
/** Throws: Adamax's max() is outside bitopt's rule language (use `adam8bit` or tf.train.adamax). */
export const adamax8bit = unsupportedFactory(TF_TRAIN.adamax, '8bit');
