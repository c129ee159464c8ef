/**
 * The optimizer checkpoint: versioned and self-describing (codes, absmax, maps, step, options),
 * made of plain objects and typed arrays, so it structured-clones and round-trips bit-exactly.
 * `parseTensorState` validates one tensor's entry completely before anything is changed.
 */
import { blockCount, validateBlockSize } from '../quant/blockwise.js';
import { validateMap } from '../quant/maps.js';
import { CLIP_HISTORY, NormHistory } from './clipping.js';
import type { StateSign, UpdateRule } from './rule.js';
import { Blockwise8State, Float32State, type StateStore } from './state.js';

export const STATE_DICT_FORMAT = 'bitopt.optimizer-state';
export const STATE_DICT_VERSION = 1;

export type StateEntry =
  | { format: 'float32'; sign: StateSign; values: Float32Array }
  | { format: 'blockwise8'; sign: StateSign; blockSize: number; map: Float32Array; codes: Uint8Array; absmax: Float32Array };

export interface TensorStateDict {
  /** Elements of the parameter this state belongs to. */
  length: number;
  /** Steps taken on this tensor (0: no state yet). */
  step: number;
  /** One entry per rule state; empty before the first step. */
  states: StateEntry[];
  /** Percentile-clipping history, or null when clipping has not run. */
  clipHistory: { norms: Float64Array; count: number } | null;
}

export interface StateDict {
  format: typeof STATE_DICT_FORMAT;
  version: typeof STATE_DICT_VERSION;
  /** Class that wrote it, e.g. 'Adam8bit'. */
  optimizer: string;
  /** Update rule, e.g. 'adam'. */
  rule: string;
  /** Each group's options and the indices (into the flat parameter list) of its parameters. */
  groups: { options: Record<string, number | number[]>; params: number[] }[];
  /** Per-parameter overrides by parameter index. */
  overrides: { param: number; options: Record<string, number | number[]> }[];
  /** One per parameter, in the flat order of the constructor's list. */
  tensors: TensorStateDict[];
}

export function storeToEntry(s: StateStore): StateEntry {
  if (s instanceof Float32State) return { format: 'float32', sign: s.sign, values: s.values.slice() };
  if (s instanceof Blockwise8State) {
    return { format: 'blockwise8', sign: s.sign, blockSize: s.blockSize, map: s.map.slice(), codes: s.codes.slice(), absmax: s.absmax.slice() };
  }
  throw new Error(`state format '${s.format}' cannot be saved`);
}

function fail(where: string, what: string): never {
  throw new Error(`loadStateDict: ${where}: ${what}`);
}

function expectArray<T>(v: unknown, type: { new (n: number): T; name: string }, length: number, where: string): T {
  if (!(v instanceof (type as unknown as new () => object))) fail(where, `expected a ${type.name}, got ${v?.constructor?.name ?? typeof v}`);
  const len = (v as unknown as { length: number }).length;
  if (len !== length) fail(where, `expected ${length} values, got ${len}`);
  return v as T;
}

function checkFinite(a: Float32Array | Float64Array, where: string, min = -Infinity, allowPlusInfinity = false): void {
  for (let i = 0; i < a.length; i++) {
    if ((!Number.isFinite(a[i]) && !(allowPlusInfinity && a[i] === Infinity)) || a[i] < min) fail(where, `value ${i} is ${a[i]}`);
  }
}

/** Validates one tensor's entry against `rule` and a parameter of `length`; returns fresh stores. */
export function parseTensorState(
  t: unknown,
  rule: UpdateRule,
  length: number,
  where: string,
): { step: number; states: StateStore[] | null; clip: NormHistory | null } {
  if (t === null || typeof t !== 'object') fail(where, 'missing');
  const e = t as Partial<TensorStateDict>;
  if (e.length !== length) fail(where, `state is for ${String(e.length)} elements but the parameter has ${length}`);
  if (typeof e.step !== 'number' || !Number.isSafeInteger(e.step) || e.step < 0) fail(where, `step must be a non-negative integer, got ${String(e.step)}`);
  if (!Array.isArray(e.states)) fail(where, 'states must be an array');
  if (e.step === 0 ? e.states.length !== 0 : e.states.length !== rule.states.length) {
    fail(where, `expected ${e.step === 0 ? 0 : rule.states.length} states for '${rule.name}' at step ${e.step}, got ${e.states.length}`);
  }
  const states = e.states.map((raw, k) => parseStateEntry(raw, rule.states[k], length, `${where}.states[${k}]`));
  const blockSizes = new Set(states.filter((s) => s instanceof Blockwise8State).map((s) => (s as Blockwise8State).blockSize));
  if (blockSizes.size > 1) fail(where, `8-bit states must share one block size, got ${[...blockSizes].join(' and ')}`);
  let clip: NormHistory | null = null;
  if (e.clipHistory != null) {
    const h = e.clipHistory;
    const norms = expectArray(h.norms, Float64Array, CLIP_HISTORY, `${where}.clipHistory.norms`);
    checkFinite(norms, `${where}.clipHistory.norms`, 0);
    if (!Number.isSafeInteger(h.count) || h.count < 0) fail(`${where}.clipHistory.count`, `must be a non-negative integer, got ${String(h.count)}`);
    clip = new NormHistory(norms.slice(), h.count);
  }
  return { step: e.step, states: states.length ? states : null, clip };
}

function parseStateEntry(raw: unknown, sign: StateSign, length: number, where: string): StateStore {
  if (raw === null || typeof raw !== 'object') fail(where, 'missing');
  const e = raw as Record<string, unknown>;
  if (e.sign !== sign) fail(where, `sign must be '${sign}', got ${String(e.sign)}`);
  if (e.format === 'float32') {
    const values = expectArray(e.values, Float32Array, length, `${where}.values`);
    // A float32 second-moment state (unsigned) overflows to +Infinity when g² exceeds float32 on
    // every backend (the element's update is then 0, never NaN); such a checkpoint must load.
    // A negative one never arises and would turn into NaN through sqrt().
    const unsigned = sign === 'unsigned';
    checkFinite(values, `${where}.values`, unsigned ? 0 : -Infinity, unsigned);
    return new Float32State(sign, values.slice());
  }
  if (e.format === 'blockwise8') {
    try {
      validateBlockSize(e.blockSize);
      validateMap(e.map);
    } catch (err) {
      fail(where, (err as Error).message);
    }
    const blockSize = e.blockSize as number;
    const codes = expectArray(e.codes, Uint8Array, length, `${where}.codes`);
    const absmax = expectArray(e.absmax, Float32Array, blockCount(length, blockSize), `${where}.absmax`);
    checkFinite(absmax, `${where}.absmax`, 0);
    return new Blockwise8State(sign, blockSize, (e.map as Float32Array).slice(), codes.slice(), absmax.slice());
  }
  fail(where, `unknown state format ${JSON.stringify(e.format)}`);
}
