/**
 * The update rules in WGSL: each rule's maths written once, as a snippet over vec4<f32>, that
 * the kernel template (./template.ts) wraps with loads, decoding, masking, re-encoding and
 * stores. Mirrors src/optim/rules/*.ts; the scalars come from the same `rule.coefficients()`,
 * turned into float32 uniforms by `uniforms` (derived terms such as 1-b1 are computed here in
 * float64 once, as the CPU reference does, instead of in float32 on the GPU).
 *
 * Snippet contract: `p`, `g` (finite, already scaled) are vec4<f32>; `s0`, `s1`, `s2` are the
 * decoded states (var, updated in place); `u.<name>` are the uniforms. A plain rule assigns
 * `np` (the new parameter). A trust-ratio rule has `direction`, which updates the states and
 * assigns `dir`, and `apply`, which turns `dir` and `trust` into `np`.
 */
import type { Coefficients } from '../../optim/rule.js';

export interface WgslRule {
  /** Uniform names (float32) the snippets read, in struct order. */
  readonly uniformNames: readonly string[];
  uniforms(c: Coefficients): Record<string, number>;
  readonly element?: string;
  readonly direction?: string;
  readonly apply?: string;
}

const adamUniforms = (c: Coefficients) => ({
  b1: c.b1,
  omb1: 1 - c.b1,
  b2: c.b2,
  omb2: 1 - c.b2,
  stepSize: c.stepSize,
  epsHat: c.epsHat,
  decay: c.wd > 0 ? 1 - c.lr * c.wd : 1,
});
const adamNames = ['b1', 'omb1', 'b2', 'omb2', 'stepSize', 'epsHat', 'decay'];
const adamDirection = /* wgsl */ `
  s0 = u.b1 * s0 + u.omb1 * g;
  s1 = u.b2 * s1 + u.omb2 * g * g;
  dir = u.stepSize * s0 / (sqrt(s1) + u.epsHat);`;

const momentumUniforms = (c: Coefficients) => ({ momentum: c.momentum, wd: c.wd, first: c.first });
const momentumNames = ['momentum', 'wd', 'first'];
const momentumDirection = /* wgsl */ `
  let gd = g + u.wd * p;
  if (u.first != 0.0) { s0 = gd; } else { s0 = u.momentum * s0 + gd; }
  dir = s0;`;

export const WGSL_RULES: Readonly<Record<string, WgslRule>> = {
  adam: {
    uniformNames: adamNames,
    uniforms: adamUniforms,
    element: `${adamDirection}
  np = (p - u.lr * dir) * u.decay;`,
  },
  lamb: {
    uniformNames: adamNames,
    uniforms: adamUniforms,
    direction: adamDirection,
    apply: `np = (p - u.lr * trust * dir) * u.decay;`,
  },
  sgd: {
    uniformNames: momentumNames,
    uniforms: momentumUniforms,
    element: `${momentumDirection}
  np = p - u.lr * dir;`,
  },
  lars: {
    uniformNames: momentumNames,
    uniforms: momentumUniforms,
    direction: momentumDirection,
    apply: `np = p - u.lr * trust * dir;`,
  },
  rmsprop: {
    uniformNames: ['alpha', 'oma', 'eps', 'wd'],
    uniforms: (c) => ({ alpha: c.alpha, oma: 1 - c.alpha, eps: c.eps, wd: c.wd }),
    element: /* wgsl */ `
  let gd = g + u.wd * p;
  s0 = u.alpha * s0 + u.oma * gd * gd;
  np = p - u.lr * gd / (sqrt(s0) + u.eps);`,
  },
  adagrad: {
    uniformNames: ['eps', 'wd'],
    uniforms: (c) => ({ eps: c.eps, wd: c.wd }),
    element: /* wgsl */ `
  let gd = g + u.wd * p;
  s0 = s0 + gd * gd;
  np = p - u.lr * gd / (sqrt(s0) + u.eps);`,
  },
  lion: {
    uniformNames: ['b1', 'omb1', 'b2', 'omb2', 'decay'],
    uniforms: (c) => ({ b1: c.b1, omb1: 1 - c.b1, b2: c.b2, omb2: 1 - c.b2, decay: 1 - c.lr * c.wd }),
    element: /* wgsl */ `
  let upd = sign(u.b1 * s0 + u.omb1 * g);
  s0 = u.b2 * s0 + u.omb2 * g;
  np = p * u.decay - u.lr * upd;`,
  },
  ademamix: {
    uniformNames: ['b1', 'omb1', 'b2', 'omb2', 'b3', 'omb3', 'alpha', 'eps', 'invC1', 'invSqrtC2', 'decay'],
    uniforms: (c) => ({
      b1: c.b1,
      omb1: 1 - c.b1,
      b2: c.b2,
      omb2: 1 - c.b2,
      b3: c.b3,
      omb3: 1 - c.b3,
      alpha: c.alpha,
      eps: c.eps,
      invC1: 1 / c.c1,
      invSqrtC2: 1 / c.sqrtC2,
      decay: c.wd > 0 ? 1 - c.lr * c.wd : 1,
    }),
    element: /* wgsl */ `
  s0 = u.b1 * s0 + u.omb1 * g;
  s1 = u.b2 * s1 + u.omb2 * g * g;
  s2 = u.b3 * s2 + u.omb3 * g;
  np = (p - u.lr * (s0 * u.invC1 + u.alpha * s2) / (sqrt(s1) * u.invSqrtC2 + u.eps)) * u.decay;`,
  },
};

export function wgslRule(name: string): WgslRule {
  const r = WGSL_RULES[name];
  if (!r) throw new Error(`webgpu: no WGSL kernel for rule '${name}'`);
  return r;
}
