import type { UpdateRule } from '../rule.js';
import { adagrad } from './adagrad.js';
import { adam } from './adam.js';
import { ademamix } from './ademamix.js';
import { lamb } from './lamb.js';
import { lars } from './lars.js';
import { lion } from './lion.js';
import { rmsprop } from './rmsprop.js';
import { sgd } from './sgd.js';

/** Every update rule by name: the one table that optimizer classes and kernels look up. */
export const RULES: Readonly<Record<string, UpdateRule>> = { adam, sgd, rmsprop, adagrad, lion, ademamix, lamb, lars };

export { adagrad, adam, ademamix, lamb, lars, lion, rmsprop, sgd };
