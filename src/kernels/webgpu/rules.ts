/**
 * The update rules in WGSL, generated from the rule specs (src/optim/rules/*.ts) by
 * scripts/generate.ts: per rule, snippets over vec4<f32> that the kernel template
 * (./template.ts) wraps with loads, decoding, masking, re-encoding and stores, and the uniforms
 * they read (computed per step in float64 from the same `rule.coefficients()` the CPU uses).
 *
 * Snippet contract: `p`, `g` (finite, already scaled) are vec4<f32>; `s0`, `s1`, `s2` are the
 * decoded states (var, updated in place); `u.<name>` are the uniforms. A plain rule assigns
 * `np` (the new parameter). A trust-ratio rule has `direction`, which updates the states and
 * assigns `dir`, and `apply`, which turns `dir` and `trust` into `np`.
 */
import { WGSL_RULES, type WgslRule } from '../../generated/wgsl-rules.js';

export { WGSL_RULES, type WgslRule };

export function wgslRule(name: string): WgslRule {
  const r = WGSL_RULES[name];
  if (!r) throw new Error(`webgpu: no WGSL kernel for rule '${name}' (only built-in rules have generated WGSL)`);
  return r;
}
