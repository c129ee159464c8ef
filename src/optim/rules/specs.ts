/**
 * Every built-in rule spec, in id order: the one list the generator (scripts/generate.ts)
 * reads and the registry (./index.ts) builds from. Adding an optimizer: its spec module, one
 * entry here, `npm run generate`.
 */
import type { RuleSpec } from '../rule.js';
import { adagrad } from './adagrad.js';
import { adam } from './adam.js';
import { ademamix } from './ademamix.js';
import { lamb } from './lamb.js';
import { lars } from './lars.js';
import { lion } from './lion.js';
import { radam } from './radam.js';
import { rmsprop } from './rmsprop.js';
import { sgd } from './sgd.js';

export const RULE_SPECS: readonly RuleSpec[] = [adam, sgd, rmsprop, adagrad, lion, ademamix, lamb, lars, radam];
