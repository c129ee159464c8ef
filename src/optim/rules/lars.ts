import type { RuleSpec } from '../rule.js';
import { MOMENTUM, sgdCoefficients } from './sgd.js';

/** LARS: SGD-momentum's direction scaled per tensor by trust = min(1, maxUnorm·||p||/||m||). */
export const lars: RuleSpec = {
  name: 'lars',
  states: { m: 'signed' },
  defaults: { lr: 1e-3, momentum: 0.9, weightDecay: 0, maxUnorm: 0.02 },
  usesTrustRatio: true,
  coefficients: sgdCoefficients,
  parity4bit: { kept: false, evidence: "MNIST, 3 seeds: final loss 1.37% above float32's, accuracy -0.17 points" },
  program: `${MOMENTUM}
  dir = m
  p = p - lr * trust * dir`,
};
