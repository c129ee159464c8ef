/**
 * The optimizer checkpoint: versioned and self-describing (codes, absmax, maps, step, options),
 * made of plain objects and typed arrays, so it structured-clones and round-trips bit-exactly.
 * `parseTensorState` validates one tensor's entry completely before anything is changed.
 */
import { checkFinite, codecByFormat, codecOf, entryError, expectArray, type StateEntry, type StateStore } from '../codecs/index.js';
import { CLIP_HISTORY, NormHistory } from './clipping.js';
import type { StateSign, UpdateRule } from './rule.js';

/** The `format` tag of every optimizer checkpoint. */
export const STATE_DICT_FORMAT = 'bitopt.optimizer-state';
/**
 * The version this build writes. 2 added 4-bit states (`blockwise4`); version-1 dicts (float32
 * and blockwise8 states only) read unchanged.
 */
export const STATE_DICT_VERSION = 2;
/** Versions this build reads. */
export const READABLE_STATE_DICT_VERSIONS: readonly number[] = [1, 2];
/** The state formats a dict of each older version may hold (newer formats came later). */
const FORMATS_BY_VERSION: Readonly<Record<number, readonly string[]>> = { 1: ['float32', 'blockwise8'] };

/** Throws unless this build reads state dicts of `version` (`who: ...` names the fix). */
export function checkStateDictVersion(version: unknown, who: string): void {
  if (!READABLE_STATE_DICT_VERSIONS.includes(version as number)) {
    throw new Error(`${who}: unsupported state dict version ${String(version)} (this build reads ${READABLE_STATE_DICT_VERSIONS.join(' and ')}; a newer bitopt wrote it?)`);
  }
}

/** A state's entry: `format`, `sign` and its codec's fields (see src/codecs). */
export type { StateEntry };

/** One parameter's checkpointed state. */
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

/** An optimizer checkpoint (`stateDict()`): plain objects and typed arrays, so it structured-clones. */
export interface StateDict {
  /** Always STATE_DICT_FORMAT. */
  format: typeof STATE_DICT_FORMAT;
  /** STATE_DICT_VERSION when written by this build; 1 for older checkpoints. */
  version: number;
  /** Class that wrote it, e.g. 'Adam8bit'. */
  optimizer: string;
  /** Update rule, e.g. 'adam'. */
  rule: string;
  /** Each group's options and the indices (into the flat parameter list) of its parameters. */
  groups: { options: Record<string, number | boolean | number[]>; params: number[] }[];
  /** Per-parameter overrides by parameter index. */
  overrides: { param: number; options: Record<string, number | boolean | number[]> }[];
  /** One per parameter, in the flat order of the constructor's list. */
  tensors: TensorStateDict[];
}

export function storeToEntry(s: StateStore): StateEntry {
  return codecOf(s).toEntry(s) as StateEntry;
}

function fail(where: string, what: string): never {
  return entryError(where, what);
}

/**
 * Validates one tensor's entry against `rule` and a parameter of `length` (of a dict of
 * `version`: the formats it may hold); returns fresh stores.
 */
export function parseTensorState(
  t: unknown,
  rule: UpdateRule,
  length: number,
  where: string,
  version: number = STATE_DICT_VERSION,
): { step: number; states: StateStore[] | null; clip: NormHistory | null } {
  if (t === null || typeof t !== 'object') fail(where, 'missing');
  const e = t as Partial<TensorStateDict>;
  if (e.length !== length) fail(where, `state is for ${String(e.length)} elements but the parameter has ${length}`);
  if (typeof e.step !== 'number' || !Number.isSafeInteger(e.step) || e.step < 0) fail(where, `step must be a non-negative integer, got ${String(e.step)}`);
  if (!Array.isArray(e.states)) fail(where, 'states must be an array');
  if (e.step === 0 ? e.states.length !== 0 : e.states.length !== rule.states.length) {
    fail(where, `expected ${e.step === 0 ? 0 : rule.states.length} states for '${rule.name}' at step ${e.step}, got ${e.states.length}`);
  }
  const states = e.states.map((raw, k) => parseStateEntry(raw, rule.states[k], length, `${where}.states[${k}]`, version));
  const formats = new Set(states.map((s) => s.format));
  if (formats.size > 1) fail(where, `a tensor's states share one format, got ${[...formats].join(' and ')}`);
  const blockSizes = new Set(states.map((s) => codecOf(s).blockSizeOf(s)).filter((b) => b !== null));
  if (blockSizes.size > 1) fail(where, `block-wise states must share one block size, got ${[...blockSizes].join(' and ')}`);
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

function parseStateEntry(raw: unknown, sign: StateSign, length: number, where: string, version: number): StateStore {
  if (raw === null || typeof raw !== 'object') fail(where, 'missing');
  const e = raw as Record<string, unknown>;
  if (e.sign !== sign) fail(where, `sign must be '${sign}', got ${String(e.sign)}`);
  const codec = codecByFormat(e.format);
  if (!codec) fail(where, `unknown state format ${JSON.stringify(e.format)}`);
  const older = FORMATS_BY_VERSION[version];
  if (older && !older.includes(codec.format)) fail(where, `state format '${codec.format}' does not exist in version ${version} state dicts (version ${STATE_DICT_VERSION} added it)`);
  return codec.fromEntry(e, sign, length, where);
}
