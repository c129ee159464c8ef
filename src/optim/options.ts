/**
 * Option names, defaults and validation. Every option an optimizer accepts is either a
 * hyperparameter of its rule or one of the framework options below; anything else is an error.
 */
import { validateBlockSize } from '../quant/blockwise.js';
import type { Hyper, UpdateRule } from './rule.js';

/** Options every optimizer accepts, with their defaults. */
export const FRAMEWORK_DEFAULTS = {
  /** 8: block-wise 8-bit state; 32: float32 state. */
  optimBits: 8,
  /** Elements per quantization block (power of two in [64, 4096]). */
  blockSize: 256,
  /** Tensors with fewer elements keep float32 state. */
  min8bitSize: 4096,
  /** Clip a gradient whose norm exceeds this percentile of the tensor's last 100 norms; 100 = off. */
  percentileClipping: 100,
} as const;

/** Options that decide how a state is stored: fixed once the state exists. */
export const STORAGE_OPTIONS = ['optimBits', 'blockSize', 'min8bitSize'] as const;

function finiteAtLeast(name: string, v: unknown, min: number, who: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw new Error(`${who}: ${name} must be a finite number >= ${min}, got ${String(v)}`);
  }
}

function unitInterval(name: string, v: unknown, who: string): void {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) {
    throw new Error(`${who}: ${name} must be in [0, 1), got ${String(v)}`);
  }
}

/** Checks one option value; `expected` is the rule's default (gives arity of array options). */
function validateOption(name: string, v: unknown, expected: unknown, who: string): void {
  switch (name) {
    case 'betas': {
      const n = (expected as readonly number[]).length;
      if (!Array.isArray(v) || v.length !== n) throw new Error(`${who}: betas must be an array of ${n} numbers, got ${JSON.stringify(v)}`);
      v.forEach((b, i) => unitInterval(`betas[${i}]`, b, who));
      return;
    }
    case 'momentum':
      return unitInterval(name, v, who);
    case 'optimBits':
      if (v !== 8 && v !== 32) throw new Error(`${who}: optimBits must be 8 or 32, got ${String(v)}`);
      return;
    case 'blockSize':
      return validateBlockSize(v, `${who}: blockSize`);
    case 'min8bitSize':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${who}: min8bitSize must be a non-negative integer, got ${String(v)}`);
      return;
    case 'percentileClipping':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 100) {
        throw new Error(`${who}: percentileClipping must be an integer in [1, 100] (100 = off), got ${String(v)}`);
      }
      return;
    default: // lr, eps, weightDecay, alpha, maxUnorm: non-negative scalars
      return finiteAtLeast(name, v, 0, who);
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
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new Error(`${who}: options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  const out: Record<string, number | readonly number[]> = {};
  for (const [name, value] of Object.entries(options)) {
    if (ignore.includes(name)) continue;
    if (!(name in defaults)) {
      throw new Error(`${who}: unknown option '${name}' (accepted: ${Object.keys(defaults).join(', ')})`);
    }
    if (value === undefined) continue;
    validateOption(name, value, defaults[name], who);
    out[name] = Array.isArray(value) ? Object.freeze([...value]) : (value as number);
  }
  return out;
}

/**
 * Validates `options` of an optimizer of `rule` whose class adds `classDefaults` (e.g.
 * `{ optimBits: 8 }`): option names, ranges, and the rule's own checks of the merged values.
 * Returns a copy of the given options (not merged). Needs no parameters: the tfjs adapter checks
 * its options with it before any variable exists.
 */
export function validateOptions(rule: UpdateRule, classDefaults: Hyper | undefined, options: unknown, who: string, ignore: readonly string[] = []): Hyper {
  const defaults = defaultOptions(rule, classDefaults);
  const h = checkOptions(options, defaults, who, ignore);
  rule.validate?.({ ...defaults, ...h }, who);
  return h;
}
