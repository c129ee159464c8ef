/**
 * Option names, defaults and validation. Every option an optimizer accepts is either a
 * hyperparameter of its rule or one of the framework options below; anything else is an error.
 */
import { validateBlockSize } from '../quant/blockwise.js';
import type { Hyper, UpdateRule } from './rule.js';

/** Options every optimizer accepts, with their defaults. */
export const FRAMEWORK_DEFAULTS = {
  /** 8: block-wise 8-bit state; 4: block-wise 4-bit state; 32: float32 state. */
  optimBits: 8,
  /** Tensors with fewer elements keep float32 state (in 8 and in 4 bits). */
  min8bitSize: 4096,
  /** Clip a gradient whose norm exceeds this percentile of the tensor's last 100 norms; 100 = off. */
  percentileClipping: 100,
  /** Opt-in to 4-bit states for a rule whose 4-bit states were measured not to keep parity (RuleSpec.parity4bit). */
  allow4bitWithoutParity: false,
} as const;

/**
 * Options accepted without a default: when none is given, what they decide comes from
 * elsewhere. `blockSize` (elements per quantization block, a power of two in [64, 4096]):
 * the state codec's `defaultBlockSize` (256 in 8 bits, 128 in 4 bits).
 */
export const OPTIONS_WITHOUT_DEFAULT = ['blockSize'] as const;

/** The `optimBits` values, each selecting a state codec (src/codecs). */
export const OPTIM_BITS = [4, 8, 32] as const;

/** Options that decide how a state is stored: fixed once the state exists. */
export const STORAGE_OPTIONS = ['optimBits', 'blockSize', 'min8bitSize'] as const;

/**
 * Safe ranges (docs/reliability.md, invariant 6): beyond them a step overflows float32 or turns
 * into NaN, so they are refused up front with the range in the message.
 */
export const SAFE_RANGES = {
  /** A step of lr·(unit direction) past 1e4 leaves any sensible parameter scale. */
  maxLr: 1e4,
  /** eps > 0: with eps 0, an element whose gradient (and so v) is 0 computes 0/0 = NaN. */
  minEps: 1e-30,
  /** The weight-decay factor 1 - lr·weightDecay must stay in [0, 1]. */
  maxLrTimesWeightDecay: 1,
  /** Other non-negative scalars (weightDecay, AdEMAMix alpha, maxUnorm) multiply the update or its cap: AdEMAMix alpha 1e308 overflowed parameters to Infinity. */
  maxScalar: 1e4,
} as const;

/** A value as a message shows it: a string quoted, so '1e-3' does not read as the number. */
const shown = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

function finiteIn(name: string, v: unknown, min: number, max: number, who: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new Error(`${who}: ${name} must be a finite number in [${min}, ${max}], got ${shown(v)}`);
  }
}

function unitInterval(name: string, v: unknown, who: string): void {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) {
    throw new Error(`${who}: ${name} must be in [0, 1), got ${shown(v)}`);
  }
}

/** Checks one option value; `expected` is the rule's default (gives arity of array options). */
function validateOption(name: string, v: unknown, expected: unknown, who: string): void {
  switch (name) {
    case 'betas': {
      const n = (expected as readonly number[]).length;
      if (!Array.isArray(v) || v.length !== n) throw new Error(`${who}: betas must be an array of ${n} numbers, got ${JSON.stringify(v)}`);
      // By index, not forEach or an iterator: a hole reads as undefined and is refused.
      for (let i = 0; i < n; i++) unitInterval(`betas[${i}]`, v[i], who);
      return;
    }
    case 'momentum':
      return unitInterval(name, v, who);
    case 'optimBits':
      if (!(OPTIM_BITS as readonly unknown[]).includes(v)) throw new Error(`${who}: optimBits must be 4, 8 or 32, got ${shown(v)}`);
      return;
    case 'blockSize':
      return validateBlockSize(v, `${who}: blockSize`);
    case 'min8bitSize':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${who}: min8bitSize must be a non-negative integer, got ${String(v)}`);
      return;
    case 'allow4bitWithoutParity':
      if (typeof v !== 'boolean') throw new Error(`${who}: allow4bitWithoutParity must be true or false, got ${shown(v)}`);
      return;
    case 'percentileClipping':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 100) {
        throw new Error(`${who}: percentileClipping must be an integer in [1, 100] (100 = off), got ${String(v)}`);
      }
      return;
    case 'lr':
      return finiteIn(name, v, 0, SAFE_RANGES.maxLr, who);
    case 'eps':
      return finiteIn(name, v, SAFE_RANGES.minEps, Number.MAX_VALUE, who);
    default: // weightDecay, alpha, maxUnorm: non-negative scalars
      return finiteIn(name, v, 0, SAFE_RANGES.maxScalar, who);
  }
}

/** Defaults of `rule` plus the framework's, overridden by `extra` (class-specific defaults). */
export function defaultOptions(rule: UpdateRule, extra: Hyper = {}): Hyper {
  return { ...rule.defaults, ...FRAMEWORK_DEFAULTS, ...extra };
}

/**
 * Validates `options` against the accepted names of `defaults` and returns a copy
 * (arrays copied too, so later changes by the caller do not leak in).
 */
export function checkOptions(options: unknown, defaults: Hyper, who: string, ignore: readonly string[] = []): Hyper {
  if (options === undefined) return {};
  const proto = options === null || typeof options !== 'object' ? undefined : Object.getPrototypeOf(options);
  if (options === null || typeof options !== 'object' || (proto !== Object.prototype && proto !== null)) {
    // A Map, an array or a class instance would have its entries silently ignored.
    throw new Error(`${who}: options must be a plain object, got ${options === null ? 'null' : typeof options === 'object' ? (proto?.constructor?.name ?? 'an object') : typeof options}`);
  }
  const out: Record<string, number | boolean | readonly number[]> = {};
  for (const [name, value] of Object.entries(options)) {
    if (ignore.includes(name)) continue;
    // Own names only: 'constructor', 'toString' or a JSON '__proto__' are not options.
    if (!Object.hasOwn(defaults, name) && !(OPTIONS_WITHOUT_DEFAULT as readonly string[]).includes(name)) {
      throw new Error(`${who}: unknown option '${name}' (accepted: ${[...Object.keys(defaults), ...OPTIONS_WITHOUT_DEFAULT].join(', ')})`);
    }
    if (value === undefined) continue;
    validateOption(name, value, defaults[name], who);
    out[name] = Array.isArray(value) ? Object.freeze(Array.from({ length: value.length }, (_, i) => value[i] as number)) : (value as number | boolean);
  }
  return out;
}

/**
 * Validates `options` of an optimizer of `rule` whose class adds `classDefaults` (e.g.
 * `{ optimBits: 8 }`): option names, ranges, and the checks between values (merged over the
 * defaults). Returns a copy of the given options (not merged). Needs no parameters: the tfjs
 * adapter checks its options with it before any variable exists. The options may be partial
 * (a `setOptions({ lr })`): what needs the options in force (the 4-bit parity gate) is left to
 * `validateMerged`, which the callers run on them.
 */
export function validateOptions(rule: UpdateRule, classDefaults: Hyper | undefined, options: unknown, who: string, ignore: readonly string[] = []): Hyper {
  const defaults = defaultOptions(rule, classDefaults);
  const h = checkOptions(options, defaults, who, ignore);
  validateRelations(rule, { ...defaults, ...h }, who);
  return h;
}

/** Checks of the options in force for a parameter (defaults, group, override): the relations between values, then the 4-bit gate. */
export function validateMerged(rule: UpdateRule, h: Hyper, who: string): void {
  validateRelations(rule, h, who);
  refuse4bitWithoutParity(rule, h, who);
}

/** Checks that hold between options, then the rule's own. */
function validateRelations(rule: UpdateRule, h: Hyper, who: string): void {
  const lr = h.lr as number;
  const wd = h.weightDecay as number;
  if (lr * wd > SAFE_RANGES.maxLrTimesWeightDecay) {
    throw new Error(`${who}: lr·weightDecay must be at most ${SAFE_RANGES.maxLrTimesWeightDecay} (the decay factor 1 - lr·weightDecay stays in [0, 1]), got ${lr} · ${wd} = ${lr * wd}`);
  }
  rule.validate?.(h, who);
}

/**
 * 4-bit states for a rule measured not to keep parity with float32 (RuleSpec.parity4bit) only
 * with `allow4bitWithoutParity: true`: the user has read what they give up.
 */
function refuse4bitWithoutParity(rule: UpdateRule, h: Hyper, who: string): void {
  if (h.optimBits !== 4 || h.allow4bitWithoutParity === true || rule.parity4bit?.kept !== false) return;
  throw new Error(
    `${who}: 4-bit states do not keep parity with float32 for ${rule.name} (${rule.parity4bit.evidence}; docs/quality-4bit.md): ` +
      `pass allow4bitWithoutParity: true to use them anyway, or use optimBits 8`,
  );
}
