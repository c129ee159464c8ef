import { at, num, type Coefficients, type Hyper, type UpdateRule } from '../rule.js';

/** Adam's per-step scalars; shared with LAMB, which follows Adam's direction. */
export function adamCoefficients(h: Hyper, t: number): Coefficients {
  const b1 = at(h, 'betas', 0);
  const b2 = at(h, 'betas', 1);
  const c2 = Math.sqrt(1 - b2 ** t);
  return {
    lr: num(h, 'lr'),
    trust: 1,
    b1,
    b2,
    wd: num(h, 'weightDecay'),
    stepSize: c2 / (1 - b1 ** t), // sqrt(1-b2^t)/(1-b1^t)
    epsHat: num(h, 'eps') * c2, // eps*sqrt(1-b2^t)
  };
}

/** Updates m (s[0]) and v (s[1]) and returns Adam's bias-corrected direction. */
export function adamDirection(g: number, s: Float32Array[], j: number, c: Coefficients): number {
  s[0][j] = c.b1 * s[0][j] + (1 - c.b1) * g;
  s[1][j] = c.b2 * s[1][j] + (1 - c.b2) * g * g;
  // Read the states back: the update uses their float32 values, as the GPU and WASM kernels do.
  return (c.stepSize * s[0][j]) / (Math.sqrt(s[1][j]) + c.epsHat);
}

/**
 * Adam / AdamW (DESIGN §1.3): p -= lr·sqrt(1-b2^t)/(1-b1^t)·m/(sqrt(v)+eps·sqrt(1-b2^t)),
 * then decoupled weight decay p *= 1 - lr·wd.
 */
export const adam: UpdateRule = {
  name: 'adam',
  states: ['signed', 'unsigned'],
  defaults: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 },
  coefficients: adamCoefficients,
  element(p, g, s, j, c) {
    const np = p - c.lr * adamDirection(g, s, j, c);
    return c.wd > 0 ? np * (1 - c.lr * c.wd) : np;
  },
};
