import type { UpdateRule } from '../rule.js';
import { adamCoefficients, adamDirection } from './adam.js';

/**
 * LAMB: Adam's direction u scaled per tensor by trust = min(1, maxUnorm·||p||/||u||)
 * (the reference library's clamp; maxUnorm 0 disables it), then decoupled weight decay.
 */
export const lamb: UpdateRule = {
  name: 'lamb',
  states: ['signed', 'unsigned'],
  defaults: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, maxUnorm: 1 },
  usesTrustRatio: true,
  coefficients: adamCoefficients,
  direction: (_p, g, s, j, c) => adamDirection(g, s, j, c),
  element(p, g, s, j, c) {
    const np = p - c.lr * c.trust * adamDirection(g, s, j, c);
    return c.wd > 0 ? np * (1 - c.lr * c.wd) : np;
  },
};
