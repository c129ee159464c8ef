import { at, num, type RuleSpec } from '../rule.js';
import { decoupledDecay } from './adam.js';

/**
 * AdEMAMix (docs/architecture.md §1.3): Adam's m and v plus a slow EMA m2 (signed map);
 * p -= lr·(m/(1-b1^t) + alpha·m2)/(sqrt(v)/sqrt(1-b2^t) + eps), then decoupled decay.
 * The numerator may cancel, so it stays float64 in every CPU mode (exact()).
 */
export const ademamix: RuleSpec = {
  name: 'ademamix',
  states: { m: 'signed', v: 'unsigned', m2: 'signed' },
  defaults: { lr: 1e-3, betas: [0.9, 0.999, 0.9999], alpha: 5, eps: 1e-8, weightDecay: 1e-2 },
  coefficients(h, t) {
    const b1 = at(h, 'betas', 0);
    const b2 = at(h, 'betas', 1);
    const b3 = at(h, 'betas', 2);
    return {
      lr: num(h, 'lr'),
      trust: 1,
      b1,
      omb1: 1 - b1,
      b2,
      omb2: 1 - b2,
      b3,
      omb3: 1 - b3,
      alpha: num(h, 'alpha'),
      eps: num(h, 'eps'),
      c1: 1 - b1 ** t,
      sqrtC2: Math.sqrt(1 - b2 ** t),
      decay: decoupledDecay(h),
    };
  },
  parity4bit: { kept: true, evidence: "MNIST, 3 seeds: final loss 0.63% below float32's, accuracy +0.13 points" },
  program: `
  m = b1 * m + omb1 * g
  v = b2 * v + omb2 * g * g
  m2 = b3 * m2 + omb3 * g
  p = (p - lr * exact(m / c1 + alpha * m2) / (sqrt(v) / sqrtC2 + eps)) * decay`,
};
