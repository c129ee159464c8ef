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
  tensors?: { size: number; fullPrecision: boolean }[];
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

/** The paper's claim, as this demo checks it. */
export const TARGETS = { lossRelative: 0.01, accuracyPoints: 0.5, stateRatio: 0.26 } as const;

export interface TwinComparison {
  task: string;
  family: string;
  bits32: VariantSummary;
  bits8: VariantSummary;
  /** (mean 8-bit loss − mean 32-bit loss) / mean 32-bit loss. */
  lossRelative: number;
  /** Mean 8-bit accuracy − mean 32-bit accuracy, in points. */
  accuracyPoints?: number;
  stateRatio: number;
  /**
   * The same ratio over the tensors the 8-bit optimizer quantizes (≥ min8bitSize elements, not
   * StableEmbedding), and the parameters whose state stays 32-bit by design.
   */
  quantized?: { stateRatio: number; float32Params: number };
  lossOk: boolean;
  accuracyOk: boolean;
  stateOk: boolean;
}

export function compareTwins(summaries: VariantSummary[]): TwinComparison[] {
  const out: TwinComparison[] = [];
  for (const s8 of summaries) {
    if (s8.spec.bits !== 8) continue;
    const s32 = summaries.find((s) => s.task === s8.task && s.spec.family === s8.spec.family && s.spec.bits === 32 && s.spec.kind === s8.spec.kind);
    if (!s32) continue;
    const lossRelative = (s8.loss.mean - s32.loss.mean) / s32.loss.mean;
    const accuracyPoints = s8.accuracy && s32.accuracy ? s8.accuracy.mean - s32.accuracy.mean : undefined;
    const stateRatio = s8.stateBytes / s32.stateBytes;
    const tensors = s8.tensors;
    const float32Params = tensors?.filter((t) => t.fullPrecision || t.size < 4096).reduce((a, t) => a + t.size, 0);
    // Bytes of float32 state per parameter (4 per state: Adam 8, SGD 4, AdEMAMix 12).
    const perParam = s32.stateBytes / s32.params;
    const quantized =
      float32Params !== undefined && Number.isInteger(perParam / 4)
        ? { stateRatio: (s8.stateBytes - perParam * float32Params) / (s32.stateBytes - perParam * float32Params), float32Params }
        : undefined;
    out.push({
      task: s8.task,
      family: s8.spec.family,
      bits32: s32,
      bits8: s8,
      lossRelative,
      ...(accuracyPoints !== undefined ? { accuracyPoints } : {}),
      stateRatio,
      ...(quantized ? { quantized } : {}),
      lossOk: Math.abs(lossRelative) <= TARGETS.lossRelative,
      accuracyOk: accuracyPoints === undefined || Math.abs(accuracyPoints) <= TARGETS.accuracyPoints,
      stateOk: stateRatio <= TARGETS.stateRatio,
    });
  }
  return out;
}
