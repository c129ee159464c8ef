import { num, type RuleSpec } from '../rule.js';

/** Adagrad (docs/architecture.md §1.3): g += wd·p; v += g²; p -= lr·g/(sqrt(v)+eps). v uses the unsigned map. */
export const adagrad: RuleSpec = {
  name: 'adagrad',
  states: { v: 'unsigned' },
  defaults: { lr: 1e-2, eps: 1e-10, weightDecay: 0 },
  coefficients: (h) => ({ lr: num(h, 'lr'), trust: 1, eps: num(h, 'eps'), wd: num(h, 'weightDecay') }),
  parity4bit: { kept: true, evidence: "MNIST, 3 seeds: final loss 2.76% below float32's, accuracy +0.10 points" },
  program: `
  gd = g + wd * p
  v = v + gd * gd
  p = p - lr * gd / (sqrt(v) + eps)`,
};
