import type { UpdateRule } from '../rule.js';
import { momentumDirection, sgdCoefficients } from './sgd.js';

/** LARS: SGD-momentum's direction scaled per tensor by trust = min(1, maxUnorm·||p||/||m||). */
export const lars: UpdateRule = {
  name: 'lars',
  states: ['signed'],
  defaults: { lr: 1e-3, momentum: 0.9, weightDecay: 0, maxUnorm: 0.02 },
  usesTrustRatio: true,
  coefficients: sgdCoefficients,
  direction: momentumDirection,
  element: (p, g, s, j, c) => p - c.lr * c.trust * momentumDirection(p, g, s, j, c),
};
