import { at, num, type Coefficients, type Hyper, type RuleSpec } from '../rule.js';

/** 1 - lr·wd, the decoupled weight decay factor (exactly 1 when wd is 0). */
export function decoupledDecay(h: Hyper): number {
  const wd = num(h, 'weightDecay');
  return wd > 0 ? 1 - num(h, 'lr') * wd : 1;
}

/** Adam's per-step scalars; shared with LAMB, which follows Adam's direction. */
export function adamCoefficients(h: Hyper, t: number): Coefficients {
  const b1 = at(h, 'betas', 0);
  const b2 = at(h, 'betas', 1);
  const c2 = Math.sqrt(1 - b2 ** t);
  return {
    lr: num(h, 'lr'),
    trust: 1,
    b1,
    omb1: 1 - b1,
    b2,
    omb2: 1 - b2,
    stepSize: c2 / (1 - b1 ** t), // sqrt(1-b2^t)/(1-b1^t)
    epsHat: num(h, 'eps') * c2, // eps*sqrt(1-b2^t)
    decay: decoupledDecay(h),
  };
}

/** Adam's moments and bias-corrected direction (LAMB shares them). */
export const ADAM_DIRECTION = `
  m = b1 * m + omb1 * g
  v = b2 * v + omb2 * g * g
  dir = stepSize * m / (sqrt(v) + epsHat)`;

/**
 * Adam / AdamW (docs/architecture.md §1.3): p -= lr·sqrt(1-b2^t)/(1-b1^t)·m/(sqrt(v)+eps·sqrt(1-b2^t)),
 * then decoupled weight decay p *= 1 - lr·wd.
 */
export const adam: RuleSpec = {
  name: 'adam',
  states: { m: 'signed', v: 'unsigned' },
  defaults: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 },
  coefficients: adamCoefficients,
  parity4bit: { kept: true, evidence: "MNIST, 3 seeds: final loss 2.90% below float32's, accuracy +0.20 points (AdamW: 2.28% below, +0.28); language model 1.38% below" },
  program: `${ADAM_DIRECTION}
  p = (p - lr * dir) * decay`,
};
