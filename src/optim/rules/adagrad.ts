import { num, type UpdateRule } from '../rule.js';

/** Adagrad (DESIGN §1.3): g += wd·p; v += g²; p -= lr·g/(sqrt(v)+eps). v uses the unsigned map. */
export const adagrad: UpdateRule = {
  name: 'adagrad',
  states: ['unsigned'],
  defaults: { lr: 1e-2, eps: 1e-10, weightDecay: 0 },
  coefficients: (h) => ({ lr: num(h, 'lr'), trust: 1, eps: num(h, 'eps'), wd: num(h, 'weightDecay') }),
  element(p, g, s, j, c) {
    const gd = g + c.wd * p;
    s[0][j] += gd * gd;
    return p - (c.lr * gd) / (Math.sqrt(s[0][j]) + c.eps);
  },
};
