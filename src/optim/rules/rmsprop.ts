import { num, type RuleSpec } from '../rule.js';

/**
 * RMSprop (docs/architecture.md §1.3): g += wd·p; v = a·v + (1-a)·g²; p -= lr·g/(sqrt(v)+eps).
 * v is non-negative, so in 8 bits it takes the unsigned map (twice the resolution of the
 * signed map the reference library uses for it).
 */
export const rmsprop: RuleSpec = {
  name: 'rmsprop',
  states: { v: 'unsigned' },
  defaults: { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0 },
  validate(h, who) {
    // alpha 1 would keep v at 0 forever: every update g/eps (one step moved 0.1 to -99.9).
    if (!(num(h, 'alpha') < 1)) throw new Error(`${who}: alpha must be in [0, 1), got ${num(h, 'alpha')}`);
  },
  coefficients: (h) => ({ lr: num(h, 'lr'), trust: 1, alpha: num(h, 'alpha'), oma: 1 - num(h, 'alpha'), eps: num(h, 'eps'), wd: num(h, 'weightDecay') }),
  parity4bit: { kept: true, evidence: "MNIST, 3 seeds: final loss 1.04% below float32's, accuracy +0.17 points" },
  program: `
  gd = g + wd * p
  v = alpha * v + oma * gd * gd
  p = p - lr * gd / (sqrt(v) + eps)`,
};
