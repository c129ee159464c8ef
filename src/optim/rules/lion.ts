import { at, num, type UpdateRule } from '../rule.js';

/** Lion (DESIGN §1.3): p *= 1-lr·wd; u = sign(b1·m + (1-b1)·g); m = b2·m + (1-b2)·g; p -= lr·u. */
export const lion: UpdateRule = {
  name: 'lion',
  states: ['signed'],
  defaults: { lr: 1e-4, betas: [0.9, 0.99], weightDecay: 0 },
  coefficients: (h) => ({ lr: num(h, 'lr'), trust: 1, b1: at(h, 'betas', 0), b2: at(h, 'betas', 1), wd: num(h, 'weightDecay') }),
  element(p, g, s, j, c) {
    const m = s[0][j];
    const u = Math.sign(c.b1 * m + (1 - c.b1) * g);
    s[0][j] = c.b2 * m + (1 - c.b2) * g;
    return p * (1 - c.lr * c.wd) - c.lr * u;
  },
};
