/** Aggregates runs over seeds and compares every 8-bit optimizer with its 32-bit twin. */
import type { OptimizerSpec } from './optimizers.js';
import type { RunResult } from './train.js';

export interface Stat {
  mean: number;
  std: number;
  min: number;
  max: number;
  values: number[];
}

export function stat(values: number[]): Stat {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, min: Math.min(...values), max: Math.max(...values), values };
}

export interface VariantSummary {
  task: string;
  spec: OptimizerSpec;
  seeds: number[];
  params: number;
  loss: Stat;
  accuracy?: Stat;
  stateBytes: number;
  peakTensorBytes: number;
  offTensorBytes: number;
  msPerStep: number;
  diverged: number;
  tensors?: { size: number; fullPrecision: boolean; format?: string; stateBytes?: number }[];
}

export function summarize(runs: RunResult[]): VariantSummary[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    const key = `${r.task}|${r.spec.id}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((rs) => {
    const acc = rs.map((r) => r.final.accuracy).filter((a): a is number => a !== undefined);
    return {
      task: rs[0].task,
      spec: rs[0].spec,
      seeds: rs.map((r) => r.seed),
      params: rs[0].params,
      loss: stat(rs.map((r) => r.final.loss)),
      ...(acc.length === rs.length ? { accuracy: stat(acc) } : {}),
      stateBytes: Math.max(...rs.map((r) => r.stateBytes)),
      peakTensorBytes: Math.max(...rs.map((r) => r.peakTensorBytes)),
      offTensorBytes: Math.max(...rs.map((r) => r.offTensorBytes)),
      msPerStep: stat(rs.map((r) => r.msPerStep)).mean,
      diverged: rs.filter((r) => r.diverged).length,
      ...(rs[0].tensors ? { tensors: rs[0].tensors } : {}),
    };
  });
}

/**
 * The paper's claim, as this demo checks it: the low-bit optimizer ends within 1% of its 32-bit
 * twin's loss (0.5 points of accuracy), and its quantized tensors' state is at most this share of
 * 32-bit state. 8-bit: 2 B of codes + 8/256 B of absmax per parameter against 8 B is 25.4%, so
 * 26% leaves room for rounding; 4-bit (blocks of 128): 1 B + 8/128 B = 13.3%, so 14%.
 */
export const TARGETS = { lossRelative: 0.01, accuracyPoints: 0.5, stateRatio: { 8: 0.26, 4: 0.14 } } as const;

/** Tensors with fewer elements keep float32 state (the optimizers' default min8bitSize). */
export const MIN_QUANTIZED_SIZE = 4096;

/** Parameters, tensors and state bytes of a set of weight tensors. */
export interface TensorGroup {
  params: number;
  tensors: number;
  /** State bytes the low-bit optimizer holds for them. */
  bytes: number;
  /** State bytes the 32-bit twin holds for the same tensors. */
  bytes32: number;
}

/**
 * Where a low-bit optimizer's state goes: the tensors it quantized, and the 32-bit remainder the
 * recipe keeps by design (StableEmbedding's weights; tensors under min8bitSize elements).
 */
export interface StateSplit {
  quantized: TensorGroup;
  embedding: TensorGroup;
  small: TensorGroup;
  /** Other float32 tensors (a per-parameter override, or no state yet). */
  other: TensorGroup;
  /** Whether formats and bytes come from the optimizer's checkpoint (else from the rule above). */
  measured: boolean;
}

export interface TwinComparison {
  task: string;
  family: string;
  /** Precision of the low-bit side (8 or 4). */
  bits: 8 | 4;
  bits32: VariantSummary;
  /** The low-bit side (named bits8 for every precision: the 8- or 4-bit variant). */
  bits8: VariantSummary;
  /** (mean low-bit loss − mean 32-bit loss) / mean 32-bit loss. */
  lossRelative: number;
  /** Mean low-bit accuracy − mean 32-bit accuracy, in points. */
  accuracyPoints?: number;
  /** Whole-model state, low-bit / 32-bit. */
  stateRatio: number;
  /** The state split, when the runs recorded their tensors. */
  split?: StateSplit;
  /**
   * The same ratio over the quantized tensors only, and the parameters whose state stays 32-bit
   * by design (kept for older callers; `split` has the detail).
   */
  quantized?: { stateRatio: number; float32Params: number };
  /** The state target for this precision (on the quantized tensors). */
  stateTarget: number;
  lossOk: boolean;
  accuracyOk: boolean;
  /** Quantized tensors within the target (whole model when no split is known). */
  stateOk: boolean;
}

const emptyGroup = (): TensorGroup => ({ params: 0, tensors: 0, bytes: 0, bytes32: 0 });

/** Splits a low-bit run's tensors into quantized and 32-bit-by-design, against its 32-bit twin. */
export function splitState(low: VariantSummary, full: VariantSummary): StateSplit | undefined {
  const tensors = low.tensors;
  if (!tensors) return undefined;
  const measured = tensors.every((t) => t.format !== undefined && t.stateBytes !== undefined);
  const fullMeasured = full.tensors?.length === tensors.length && full.tensors.every((t) => t.stateBytes !== undefined);
  // Bytes of float32 state per parameter of the twin (4 per state: Adam 8, SGD 4, AdEMAMix 12).
  const perParam = full.stateBytes / full.params;
  const split: StateSplit = { quantized: emptyGroup(), embedding: emptyGroup(), small: emptyGroup(), other: emptyGroup(), measured };
  tensors.forEach((t, i) => {
    const quantized = measured ? t.format!.startsWith('blockwise') : !t.fullPrecision && t.size >= MIN_QUANTIZED_SIZE;
    const g = quantized ? split.quantized : t.fullPrecision ? split.embedding : t.size < MIN_QUANTIZED_SIZE ? split.small : split.other;
    g.params += t.size;
    g.tensors += 1;
    const bytes32 = fullMeasured ? full.tensors![i].stateBytes! : perParam * t.size;
    g.bytes32 += bytes32;
    // Without a record, a 32-bit tensor holds what the twin holds for it.
    g.bytes += measured ? t.stateBytes! : quantized ? NaN : bytes32;
  });
  if (!measured) split.quantized.bytes = low.stateBytes - split.embedding.bytes - split.small.bytes - split.other.bytes;
  return split;
}

export function compareTwins(summaries: VariantSummary[]): TwinComparison[] {
  const out: TwinComparison[] = [];
  for (const low of summaries) {
    const bits = low.spec.bits;
    if (bits !== 8 && bits !== 4) continue;
    const s32 = summaries.find((s) => s.task === low.task && s.spec.family === low.spec.family && s.spec.bits === 32 && s.spec.kind === low.spec.kind);
    if (!s32) continue;
    const lossRelative = (low.loss.mean - s32.loss.mean) / s32.loss.mean;
    const accuracyPoints = low.accuracy && s32.accuracy ? low.accuracy.mean - s32.accuracy.mean : undefined;
    const stateRatio = low.stateBytes / s32.stateBytes;
    const split = splitState(low, s32);
    const q = split && split.quantized.params > 0 ? split.quantized : undefined;
    const stateTarget = TARGETS.stateRatio[bits];
    out.push({
      task: low.task,
      family: low.spec.family,
      bits,
      bits32: s32,
      bits8: low,
      lossRelative,
      ...(accuracyPoints !== undefined ? { accuracyPoints } : {}),
      stateRatio,
      ...(split ? { split } : {}),
      ...(q ? { quantized: { stateRatio: q.bytes / q.bytes32, float32Params: split!.embedding.params + split!.small.params + split!.other.params } } : {}),
      stateTarget,
      lossOk: Math.abs(lossRelative) <= TARGETS.lossRelative,
      accuracyOk: accuracyPoints === undefined || Math.abs(accuracyPoints) <= TARGETS.accuracyPoints,
      stateOk: (q ? q.bytes / q.bytes32 : stateRatio) <= stateTarget,
    });
  }
  return out;
}

/** One verdict check in words (the report colours it too; the words carry it alone). */
export interface Check {
  name: 'loss' | 'accuracy' | 'state';
  ok: boolean;
  text: string;
}

const signed = (x: number, d: number, unit = '') => `${x >= 0 ? '+' : ''}${x.toFixed(d)}${unit}`;

/** The verdict of a comparison, check by check, in words. */
export function checks(t: TwinComparison): Check[] {
  const out: Check[] = [];
  const loss = `${signed(100 * t.lossRelative, 2, '%')}`;
  out.push({ name: 'loss', ok: t.lossOk, text: t.lossOk ? `loss ${loss}: within ±${100 * TARGETS.lossRelative}%` : `loss ${loss}: outside ±${100 * TARGETS.lossRelative}% (${t.lossRelative < 0 ? 'lower' : 'higher'} than 32-bit)` });
  if (t.accuracyPoints !== undefined) {
    const a = signed(t.accuracyPoints, 2, ' pt');
    out.push({ name: 'accuracy', ok: t.accuracyOk, text: `accuracy ${a}: ${t.accuracyOk ? 'within' : 'outside'} ±${TARGETS.accuracyPoints} pt` });
  }
  const target = `${(100 * t.stateTarget).toFixed(0)}%`;
  if (t.quantized) {
    const r = `${(100 * t.quantized.stateRatio).toFixed(1)}%`;
    out.push({ name: 'state', ok: t.stateOk, text: `state of the quantized tensors ${r} of 32-bit: ${t.stateOk ? 'within' : 'above'} ${target}` });
  } else {
    const r = `${(100 * t.stateRatio).toFixed(1)}%`;
    out.push({ name: 'state', ok: t.stateOk, text: `state ${r} of 32-bit: ${t.stateOk ? 'within' : 'above'} ${target}` });
  }
  return out;
}

/** "meets the claim" or the checks that miss, in words. */
export function verdictText(t: TwinComparison): string {
  const miss = checks(t).filter((c) => !c.ok);
  return miss.length === 0 ? 'meets the claim' : `misses: ${miss.map((c) => c.name).join(', ')}`;
}

/**
 * The whole model's state in words, with the 32-bit remainder named, e.g. "whole model 28.5% of
 * 32-bit; 4,480 parameters keep 32-bit state by design (StableEmbedding 3,072; 14 tensors under
 * 4096 elements, 1,408)".
 */
export function remainderText(t: TwinComparison): string {
  const whole = `whole model ${(100 * t.stateRatio).toFixed(1)}% of 32-bit`;
  const s = t.split;
  if (!s) return whole;
  const kept = s.embedding.params + s.small.params + s.other.params;
  if (kept === 0) return `${whole}: every tensor quantized`;
  const n = (x: number) => x.toLocaleString('en-US');
  const parts: string[] = [];
  if (s.embedding.params) parts.push(`StableEmbedding ${n(s.embedding.params)}`);
  if (s.small.params) parts.push(`${s.small.tensors} tensor${s.small.tensors > 1 ? 's' : ''} under ${MIN_QUANTIZED_SIZE} elements, ${n(s.small.params)}`);
  if (s.other.params) parts.push(`${s.other.tensors} other float32 tensor${s.other.tensors > 1 ? 's' : ''}, ${n(s.other.params)}`);
  const share = (100 * kept) / (kept + s.quantized.params);
  return `${whole}; ${n(kept)} parameters (${share.toFixed(1)}% of the model) keep 32-bit state${s.other.params ? '' : ' by design'} (${parts.join('; ')})`;
}
