import { at, num, type RuleSpec } from '../rule.js';

/** Lion (docs/architecture.md §1.3): p *= 1-lr·wd; u = sign(b1·m + (1-b1)·g); m = b2·m + (1-b2)·g; p -= lr·u. */
export const lion: RuleSpec = {
  name: 'lion',
  states: { m: 'signed' },
  defaults: { lr: 1e-4, betas: [0.9, 0.99], weightDecay: 0 },
  coefficients(h) {
    const b1 = at(h, 'betas', 0);
    const b2 = at(h, 'betas', 1);
    return { lr: num(h, 'lr'), trust: 1, b1, omb1: 1 - b1, b2, omb2: 1 - b2, decay: 1 - num(h, 'lr') * num(h, 'weightDecay') };
  },
  parity4bit: { kept: false, evidence: "MNIST, 3 seeds: final loss 17.6% above float32's, accuracy -1.88 points" },
  program: `
  u = sign(b1 * m + omb1 * g)
  m = b2 * m + omb2 * g
  p = p * decay - lr * u`,
};
