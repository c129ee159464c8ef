/**
 * An independent float64 re-implementation of every update rule, written from docs/architecture.md §1.3
 * (not from src/optim/rules). It works on whole tensors; `storeF32` rounds each stored value
 * (parameters and states) to float32 the way a float32 optimizer stores them, so that long
 * runs can be compared tightly.
 */

export interface RefHyper {
  lr: number;
  betas?: number[];
  momentum?: number;
  alpha?: number;
  eps?: number;
  weightDecay?: number;
  maxUnorm?: number;
}

export type Round = (x: number) => number;
export const storeF32: Round = Math.fround;
export const keep64: Round = (x) => x;

/** One step of `rule` at step t over arrays p (param), g (grad), s (states), all float64 arrays. */
export function refStep(rule: string, h: RefHyper, t: number, p: Float64Array, g: Float64Array, s: Float64Array[], r: Round = keep64): void {
  const n = p.length;
  const wd = h.weightDecay ?? 0;
  const lr = h.lr;
  const bad = (x: number) => !Number.isFinite(x);
  // Elements with a non-finite gradient: parameter untouched, states reset.
  const live = (i: number) => {
    if (!bad(g[i])) return true;
    for (const st of s) st[i] = 0;
    return false;
  };
  switch (rule) {
    case 'adam':
    case 'lamb': {
      const [b1, b2] = h.betas!;
      const eps = h.eps!;
      const c2 = Math.sqrt(1 - b2 ** t);
      const u = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        if (!live(i)) continue;
        s[0][i] = r(b1 * s[0][i] + (1 - b1) * g[i]);
        s[1][i] = r(b2 * s[1][i] + (1 - b2) * g[i] * g[i]);
        u[i] = ((c2 / (1 - b1 ** t)) * s[0][i]) / (Math.sqrt(s[1][i]) + eps * c2);
      }
      const scale = rule === 'lamb' ? trustScale(p, u, g, h.maxUnorm!) : 1;
      for (let i = 0; i < n; i++) {
        if (bad(g[i])) continue;
        let np = p[i] - lr * scale * u[i];
        if (wd > 0) np *= 1 - lr * wd;
        p[i] = r(np);
      }
      return;
    }
    case 'sgd':
    case 'lars': {
      const b = h.momentum!;
      const u = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        if (!live(i)) continue;
        const gi = g[i] + wd * p[i];
        s[0][i] = r(t === 1 ? gi : b * s[0][i] + gi);
        u[i] = s[0][i];
      }
      const scale = rule === 'lars' ? trustScale(p, u, g, h.maxUnorm!) : 1;
      for (let i = 0; i < n; i++) if (!bad(g[i])) p[i] = r(p[i] - lr * scale * u[i]);
      return;
    }
    case 'rmsprop': {
      const a = h.alpha!;
      for (let i = 0; i < n; i++) {
        if (!live(i)) continue;
        const gi = g[i] + wd * p[i];
        s[0][i] = r(a * s[0][i] + (1 - a) * gi * gi);
        p[i] = r(p[i] - (lr * gi) / (Math.sqrt(s[0][i]) + h.eps!));
      }
      return;
    }
    case 'adagrad': {
      for (let i = 0; i < n; i++) {
        if (!live(i)) continue;
        const gi = g[i] + wd * p[i];
        s[0][i] = r(s[0][i] + gi * gi);
        p[i] = r(p[i] - (lr * gi) / (Math.sqrt(s[0][i]) + h.eps!));
      }
      return;
    }
    case 'lion': {
      const [b1, b2] = h.betas!;
      for (let i = 0; i < n; i++) {
        if (!live(i)) continue;
        const c = b1 * s[0][i] + (1 - b1) * g[i];
        const u = c > 0 ? 1 : c < 0 ? -1 : 0;
        s[0][i] = r(b2 * s[0][i] + (1 - b2) * g[i]);
        p[i] = r(p[i] * (1 - lr * wd) - lr * u);
      }
      return;
    }
    case 'ademamix': {
      const [b1, b2, b3] = h.betas!;
      const alpha = h.alpha!;
      for (let i = 0; i < n; i++) {
        if (!live(i)) continue;
        s[0][i] = r(b1 * s[0][i] + (1 - b1) * g[i]);
        s[1][i] = r(b2 * s[1][i] + (1 - b2) * g[i] * g[i]);
        s[2][i] = r(b3 * s[2][i] + (1 - b3) * g[i]);
        const num = s[0][i] / (1 - b1 ** t) + alpha * s[2][i];
        const den = Math.sqrt(s[1][i]) / Math.sqrt(1 - b2 ** t) + h.eps!;
        let np = p[i] - (lr * num) / den;
        if (wd > 0) np *= 1 - lr * wd;
        p[i] = r(np);
      }
      return;
    }
    case 'radam': {
      // torch.optim.RAdam (weight_decay as L2, decoupled_weight_decay=False), written from its docs.
      const [b1, b2] = h.betas!;
      const bc1 = 1 - b1 ** t;
      const bc2 = 1 - b2 ** t;
      const rhoInf = 2 / (1 - b2) - 1;
      const rhoT = rhoInf - (2 * t * b2 ** t) / bc2;
      for (let i = 0; i < n; i++) {
        if (!live(i)) continue;
        const gi = g[i] + wd * p[i];
        s[0][i] = r(b1 * s[0][i] + (1 - b1) * gi);
        s[1][i] = r(b2 * s[1][i] + (1 - b2) * gi * gi);
        const mHat = s[0][i] / bc1;
        if (rhoT > 5) {
          const rect = Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
          const adaptive = Math.sqrt(bc2) / (Math.sqrt(s[1][i]) + h.eps!);
          p[i] = r(p[i] - mHat * lr * adaptive * rect);
        } else {
          p[i] = r(p[i] - mHat * lr);
        }
      }
      return;
    }
    default:
      throw new Error(`no reference for ${rule}`);
  }
}

/** min(1, maxUnorm·||p||/||u||) over finite-gradient elements (1 when disabled or ||p|| = 0). */
function trustScale(p: Float64Array, u: Float64Array, g: Float64Array, maxUnorm: number): number {
  if (!(maxUnorm > 0)) return 1;
  let pp = 0;
  let uu = 0;
  for (let i = 0; i < p.length; i++) {
    pp += p[i] * p[i];
    if (Number.isFinite(g[i])) uu += u[i] * u[i];
  }
  const pn = Math.sqrt(pp);
  const un = Math.sqrt(uu);
  return pn > 0 && un > maxUnorm * pn ? (maxUnorm * pn) / un : 1;
}

/** Number of states each rule keeps, and which are signed (momentum-like). */
export const REF_STATES: Record<string, ('signed' | 'unsigned')[]> = {
  adam: ['signed', 'unsigned'],
  lamb: ['signed', 'unsigned'],
  sgd: ['signed'],
  lars: ['signed'],
  rmsprop: ['unsigned'],
  adagrad: ['unsigned'],
  lion: ['signed'],
  ademamix: ['signed', 'unsigned', 'signed'],
  radam: ['signed', 'unsigned'],
};

/** Each rule's 8-bit class with a learning rate that moves parameters visibly in a few steps. */
export const EIGHT_BIT_CLASSES: Record<string, [string, { lr: number }]> = {
  adam: ['Adam8bit', { lr: 1e-2 }],
  sgd: ['SGD8bit', { lr: 1e-2 }],
  rmsprop: ['RMSprop8bit', { lr: 1e-3 }],
  adagrad: ['Adagrad8bit', { lr: 1e-2 }],
  lion: ['Lion8bit', { lr: 1e-3 }],
  ademamix: ['AdEMAMix8bit', { lr: 1e-3 }],
  lamb: ['LAMB8bit', { lr: 1e-2 }],
  lars: ['LARS8bit', { lr: 1e-2 }],
  radam: ['RAdam8bit', { lr: 1e-2 }],
};

/** Deterministic PRNG (mulberry32) and normal samples, so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export function randn(n: number, rand: () => number, scale = 1): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = normal(rand) * scale;
  return x;
}
