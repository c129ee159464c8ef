/**
 * Percentile clipping (docs/architecture.md §1.4): each tensor keeps its last 100 gradient norms; when the
 * current norm is above the chosen percentile of that history, the gradient is scaled down to it.
 * The history holds the current norm too, so the first step is never clipped (the reference
 * library starts from 100 zeros instead, which freezes training for its first steps).
 */

export const CLIP_HISTORY = 100;

/** L2 norm over the finite elements (non-finite ones are dropped by the update anyway). */
export function finiteNorm(g: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < g.length; i++) {
    const x = g[i];
    if (x - x === 0) sum += x * x;
  }
  return Math.sqrt(sum);
}

/** Ring buffer of recent gradient norms of one tensor. */
export class NormHistory {
  constructor(
    /** Norms, oldest overwritten first; only the first `count` entries are meaningful. */
    readonly norms: Float64Array = new Float64Array(CLIP_HISTORY),
    public count = 0,
  ) {}

  /**
   * Records `norm` and returns the factor to scale the gradient by: the `percentile`-th
   * smallest recorded norm divided by `norm` when `norm` exceeds it, else 1.
   */
  record(norm: number, percentile: number): number {
    this.norms[this.count % CLIP_HISTORY] = norm;
    this.count++;
    const n = Math.min(this.count, CLIP_HISTORY);
    const sorted = this.norms.slice(0, n).sort();
    const clip = sorted[Math.min(n - 1, Math.floor((percentile * n) / 100))];
    return norm > clip ? clip / norm : 1;
  }
}
