import { num, type Coefficients, type Hyper, type RuleSpec } from '../rule.js';

export function sgdCoefficients(h: Hyper, t: number): Coefficients {
  return { lr: num(h, 'lr'), trust: 1, momentum: num(h, 'momentum'), wd: num(h, 'weightDecay'), first: t === 1 ? 1 : 0 };
}

/** The momentum buffer: m = g at t = 1, else momentum·m + g (g += wd·p, L2 weight decay). */
export const MOMENTUM = `
  gd = g + wd * p
  m = first ? gd : momentum * m + gd`;

/** SGD with momentum (docs/architecture.md §1.3): p -= lr·m. */
export const sgd: RuleSpec = {
  name: 'sgd',
  states: { m: 'signed' },
  defaults: { lr: 1e-3, momentum: 0.9, weightDecay: 0 },
  coefficients: sgdCoefficients,
  parity4bit: { kept: false, evidence: "MNIST, 3 seeds: final loss 1.77% above float32's (momentum 0.9), accuracy -0.27 points" },
  program: `${MOMENTUM}
  p = p - lr * m`,
};
