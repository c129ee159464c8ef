import { at, num, type UpdateRule } from '../rule.js';

/**
 * AdEMAMix (DESIGN §1.3): Adam's m (s[0]) and v (s[1]) plus a slow EMA m2 (s[2], signed map);
 * p -= lr·(m/(1-b1^t) + alpha·m2)/(sqrt(v)/sqrt(1-b2^t) + eps), then decoupled decay.
 */
export const ademamix: UpdateRule = {
  name: 'ademamix',
  states: ['signed', 'unsigned', 'signed'],
  defaults: { lr: 1e-3, betas: [0.9, 0.999, 0.9999], alpha: 5, eps: 1e-8, weightDecay: 1e-2 },
  coefficients(h, t) {
    const b1 = at(h, 'betas', 0);
    const b2 = at(h, 'betas', 1);
    return {
      lr: num(h, 'lr'),
      trust: 1,
      b1,
      b2,
      b3: at(h, 'betas', 2),
      alpha: num(h, 'alpha'),
      eps: num(h, 'eps'),
      wd: num(h, 'weightDecay'),
      c1: 1 - b1 ** t,
      sqrtC2: Math.sqrt(1 - b2 ** t),
    };
  },
  element(p, g, s, j, c) {
    s[0][j] = c.b1 * s[0][j] + (1 - c.b1) * g;
    s[1][j] = c.b2 * s[1][j] + (1 - c.b2) * g * g;
    s[2][j] = c.b3 * s[2][j] + (1 - c.b3) * g;
    // The update reads the stored float32 states.
    const np = p - (c.lr * (s[0][j] / c.c1 + c.alpha * s[2][j])) / (Math.sqrt(s[1][j]) / c.sqrtC2 + c.eps);
    return c.wd > 0 ? np * (1 - c.lr * c.wd) : np;
  },
};
