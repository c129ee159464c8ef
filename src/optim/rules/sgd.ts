import { num, type Coefficients, type Hyper, type UpdateRule } from '../rule.js';

export function sgdCoefficients(h: Hyper, t: number): Coefficients {
  return { lr: num(h, 'lr'), trust: 1, momentum: num(h, 'momentum'), wd: num(h, 'weightDecay'), first: t === 1 ? 1 : 0 };
}

/** Updates the momentum buffer s[0] and returns it: m = g at t = 1, else b·m + g (g += wd·p). */
export function momentumDirection(p: number, g: number, s: Float32Array[], j: number, c: Coefficients): number {
  const gd = g + c.wd * p;
  s[0][j] = c.first ? gd : c.momentum * s[0][j] + gd;
  return s[0][j]; // the stored float32 value
}

/** SGD with momentum (DESIGN §1.3): p -= lr·m. */
export const sgd: UpdateRule = {
  name: 'sgd',
  states: ['signed'],
  defaults: { lr: 1e-3, momentum: 0.9, weightDecay: 0 },
  coefficients: sgdCoefficients,
  element: (p, g, s, j, c) => p - c.lr * momentumDirection(p, g, s, j, c),
};
