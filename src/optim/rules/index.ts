import { REFERENCE_FUNCTIONS } from '../../generated/reference-rules.js';
import type { RuleSpec, UpdateRule } from '../rule.js';
import { RULE_SPECS } from './specs.js';

/** A spec plus its generated reference functions. */
function build(spec: RuleSpec): UpdateRule {
  const generated = REFERENCE_FUNCTIONS[spec.name];
  if (!generated) throw new Error(`rule '${spec.name}' has no generated code: run npm run generate`);
  return Object.freeze({
    ...spec,
    states: Object.freeze(Object.values(spec.states)),
    stateNames: Object.freeze(Object.keys(spec.states)),
    element: generated.element,
    direction: generated.direction,
  });
}

/** Every update rule by name: the one table that optimizer classes and kernels look up. */
export const RULES: Readonly<Record<string, UpdateRule>> = Object.freeze(Object.fromEntries(RULE_SPECS.map((s) => [s.name, build(s)])));

export const { adam, sgd, rmsprop, adagrad, lion, ademamix, lamb, lars, radam } = RULES;
