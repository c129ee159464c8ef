/**
 * Moving Adam state between bitopt and tfjs's own `tf.train.adam`, in either direction.
 *
 * tf.train.adam's `getWeights()` (tfjs-core 4.x, src/optimizers/adam_optimizer.ts) is
 * `[iter, <var>/m for every variable, then <var>/v for every variable]`, m and v float32 tensors
 * of the variable's shape, in the order its variables were first stepped; its `setWeights` reads
 * them by position (first half m, second half v) and sets its bias-correction powers from `iter`
 * alone (beta^(iter+1)). bitopt's Adam keeps the same m and v (docs/architecture.md §1.3,
 * src/optim/rules/adam.ts: m = b1·m + (1-b1)·g, v = b2·v + (1-b2)·g²), so a move is exact in
 * float32 and, into 8- or 4-bit state, one quantization of m and v.
 *
 * What tf.train.adam cannot hold is refused, naming it: AdamW's weight decay, percentile
 * clipping, per-variable hyperparameters, and variables stepped a different number of times
 * (tfjs counts steps per optimizer, bitopt per variable).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensor } from '@tensorflow/tfjs-core/dist/tensor_types.js';
import { codecByFormat, type StateEntry } from '../codecs/index.js';
import { storageChoice } from '../optim/book.js';
import * as core from '../optim/classes.js';
import { describeOptimizerClass, type OptimizerClass } from '../optim/optimizer.js';
import { defaultOptions, STORAGE_OPTIONS } from '../optim/options.js';
import type { Hyper } from '../optim/rule.js';
import { STATE_DICT_FORMAT, STATE_DICT_VERSION, type StateDict } from '../optim/statedict.js';
import { BitoptOptimizer } from './optimizer.js';
import { optimOverrideOf } from './overrides.js';
import { fromTfjsKeys, tfjsNamesFor } from './tfjs-names.js';
import { decodeVariableStates, encodeVariableState, type VariableState } from './weights.js';

/** The bitopt classes whose update is tf.train.adam's (bitopt.Adam, bitopt.Adam8bit, bitopt.Adam4bit). */
const ADAM_CLASSES = ['Adam', 'Adam8bit', 'Adam4bit'] as const;

/** The core class of a bitopt tfjs optimizer whose rule is tf.train.adam's, or an error naming why not. */
function adamCore(opt: unknown, who: string): { coreName: string; core: OptimizerClass } {
  if (!(opt instanceof BitoptOptimizer)) throw new Error(`${who}: expected a bitopt/tfjs optimizer, got ${(opt as object)?.constructor?.name ?? typeof opt}`);
  const className = (opt.constructor as unknown as { className: string }).className;
  const coreName = className.replace(/^bitopt\./, '');
  if (!(ADAM_CLASSES as readonly string[]).includes(coreName)) {
    throw new Error(`${who}: ${className} is not tf.train.adam's update (only ${ADAM_CLASSES.map((c) => `bitopt.${c}`).join(', ')} are; AdamW's decoupled weight decay and the other rules have no tf.train.adam state)`);
  }
  return { coreName, core: (core as unknown as Record<string, OptimizerClass>)[coreName] };
}

/** The options in force for `opt` (its class's defaults, then its config), in bitopt's keys. */
function optionsInForce(opt: BitoptOptimizer, coreClass: OptimizerClass, who: string): Hyper {
  const { rule, classDefaults } = describeOptimizerClass(coreClass);
  const defaults = defaultOptions(rule, classDefaults);
  return { ...defaults, ...(fromTfjsKeys(opt.getConfig() as Record<string, unknown>, tfjsNamesFor(defaults), defaults, who) as Hyper) };
}

/** Throws unless `h` is tf.train.adam's update: no weight decay, no clipping. */
function checkPlainAdam(h: Record<string, unknown>, where: string, who: string): void {
  if ((h.weightDecay ?? 0) !== 0) throw new Error(`${who}: ${where} has weightDecay ${String(h.weightDecay)}; tf.train.adam has no weight decay`);
  if ((h.percentileClipping ?? 100) !== 100) throw new Error(`${who}: ${where} has percentileClipping ${String(h.percentileClipping)}; tf.train.adam does not clip, and its history would be lost`);
}

/** A state's values as float32, decoded block by block (block formats decode whole blocks). */
function decodeEntry(entry: StateEntry, length: number, where: string): Float32Array {
  const codec = codecByFormat(entry.format);
  if (!codec) throw new Error(`${where}: unknown state format '${String(entry.format)}'`);
  const store = codec.fromEntry(entry as unknown as Record<string, unknown>, entry.sign, length, where);
  const bs = codec.blockSizeOf(store) ?? length;
  const out = new Float32Array(length);
  for (let s = 0; s < length; s += bs) store.load(s, Math.min(bs, length - s), out.subarray(s));
  return out;
}

/**
 * `opt`'s state as tf.train.adam's weights (tensors the caller owns): `iter`, every variable's
 * `<name>/m`, then every `<name>/v`, in the order its variables joined (the order tf.train.adam
 * would have created them under the same `model.fit` or `minimize`). Feed them to a
 * `tf.train.adam(learningRate, beta1, beta2, epsilon)` with `opt`'s hyperparameters
 * (`toTfjsAdam` does both).
 */
export async function toTfjsAdamWeights(opt: BitoptOptimizer): Promise<NamedTensor[]> {
  const who = 'bitopt.toTfjsAdamWeights';
  const { core: coreClass } = adamCore(opt, who);
  checkPlainAdam(optionsInForce(opt, coreClass, who), 'the optimizer', who);
  const weights = await opt.getWeights();
  const states = await decodeVariableStates(weights.slice(1));
  const iterations = opt.iterations;
  const m: NamedTensor[] = [];
  const v: NamedTensor[] = [];
  try {
    for (const st of states) {
      const t = st.dict.tensors[0];
      checkPlainAdam(st.dict.groups[0]?.options ?? {}, `the state of '${st.name}'`, who);
      for (const o of st.dict.overrides) {
        const own = Object.keys(o.options).filter((k) => !(STORAGE_OPTIONS as readonly string[]).includes(k));
        if (own.length) throw new Error(`${who}: variable '${st.name}' has its own ${own.join(', ')}; tf.train.adam has one set of hyperparameters for all variables`);
      }
      if (t.step !== iterations) {
        throw new Error(
          `${who}: variable '${st.name}' took ${t.step} steps but the optimizer ${iterations}; tf.train.adam's bias correction counts the optimizer's steps, so its state would be wrong for this variable (did a minimize() leave it out?)`,
        );
      }
      const length = t.length;
      const [mv, vv] = t.step === 0 ? [new Float32Array(length), new Float32Array(length)] : t.states.map((e, k) => decodeEntry(e, length, `${who}: '${st.name}' state ${k}`));
      m.push({ name: `${st.name}/m`, tensor: tf.tensor(mv, st.shape, 'float32') });
      v.push({ name: `${st.name}/v`, tensor: tf.tensor(vv, st.shape, 'float32') });
    }
  } finally {
    tf.dispose(weights.map((w) => w.tensor));
  }
  return [{ name: 'iter', tensor: tf.scalar(iterations, 'int32') }, ...m, ...v];
}

/** A `tf.train.adam` with `opt`'s learning rate, betas and epsilon, holding `opt`'s state. */
export async function toTfjsAdam(opt: BitoptOptimizer): Promise<tf.AdamOptimizer> {
  const { core: coreClass } = adamCore(opt, 'bitopt.toTfjsAdam');
  const h = optionsInForce(opt, coreClass, 'bitopt.toTfjsAdam');
  const betas = h.betas as readonly number[];
  const adam = tf.train.adam(h.lr as number, betas[0], betas[1], h.eps as number);
  const weights = await toTfjsAdamWeights(opt);
  // tf.train.adam's setWeights turns the given tensors into its variables (it keeps them).
  await adam.setWeights(weights);
  return adam;
}

/**
 * Loads tf.train.adam's weights (`iter`, the m's, the v's) into `opt` (bitopt.Adam, Adam8bit
 * or Adam4bit), as `opt.setWeights` would its own: each variable's state binds at its next
 * step, by name where the names match (`<variable>/m`), else by order. m and v are stored as
 * `opt` stores a new state (8- or 4-bit above min8bitSize, float32 below, a variable's
 * registered override such as StableEmbedding's 32-bit); `opt` keeps its own hyperparameters.
 * Does not dispose `weights`.
 */
export async function setWeightsFromTfjsAdam(opt: BitoptOptimizer, weights: NamedTensor[]): Promise<void> {
  const who = 'bitopt.setWeightsFromTfjsAdam';
  const { coreName, core: coreClass } = adamCore(opt, who);
  if (!Array.isArray(weights) || weights[0]?.name !== 'iter') throw new Error(`${who}: expected tf.train.adam's getWeights() (first 'iter', then '<variable>/m' ..., then '<variable>/v' ...)`);
  const rest = weights.slice(1);
  if (rest.length % 2) throw new Error(`${who}: expected as many '/v' weights as '/m' weights, got ${rest.length} after 'iter'`);
  const iterations = (await weights[0].tensor.data())[0];
  if (!Number.isSafeInteger(iterations) || iterations < 0) throw new Error(`${who}: 'iter' must be a non-negative integer, got ${iterations}`);
  const h = optionsInForce(opt, coreClass, who);
  const { rule } = describeOptimizerClass(coreClass);
  const signs = Object.values(rule.states);
  const n = rest.length / 2;
  const states: VariableState[] = [];
  for (let i = 0; i < n; i++) {
    const [mw, vw] = [rest[i], rest[n + i]];
    const name = mw.name.replace(/\/m$/, '');
    if (!mw.name.endsWith('/m') || vw.name !== `${name}/v`) throw new Error(`${who}: weight ${i + 1} and ${n + i + 1} must be '<variable>/m' and '<variable>/v', got '${mw.name}' and '${vw.name}'`);
    if (mw.tensor.dtype !== 'float32' || vw.tensor.dtype !== 'float32') throw new Error(`${who}: '${name}' m and v must be float32 tensors`);
    const shape = [...mw.tensor.shape];
    if (shape.join() !== vw.tensor.shape.join()) throw new Error(`${who}: '${name}/m' has shape [${shape}] but '${name}/v' [${vw.tensor.shape}]`);
    const variable = tf.engine().registeredVariables[name];
    const override = (variable ? optimOverrideOf(variable) : undefined) ?? {};
    const choice = storageChoice(mw.tensor.size, { ...h, ...(override as Hyper) });
    const codec = codecByFormat(choice.format)!;
    const values = [await mw.tensor.data(), await vw.tensor.data()] as Float32Array[];
    const entries = iterations === 0 ? [] : values.map((a, k) => {
      const store = codec.create(signs[k], a.length, choice.blockSize);
      // store() may clamp its source in place: give it a copy of each block.
      for (let s = 0; s < a.length; s += choice.blockSize) store.store(s, Math.min(choice.blockSize, a.length - s), a.slice(s, s + choice.blockSize));
      return codec.toEntry(store) as StateEntry;
    });
    const dict: StateDict = {
      format: STATE_DICT_FORMAT,
      version: STATE_DICT_VERSION,
      optimizer: coreName,
      rule: rule.name,
      // No group options: the optimizer keeps its own (setWeights would restore these).
      groups: [{ options: {}, params: [0] }],
      overrides: Object.keys(override).length ? [{ param: 0, options: override as Record<string, number | boolean | number[]> }] : [],
      tensors: [{ length: mw.tensor.size, step: iterations, states: entries, clipHistory: null }],
    };
    states.push({ name, shape, optimizer: (opt.constructor as unknown as { className: string }).className, dict });
  }
  const own = [{ name: 'iter', tensor: tf.scalar(iterations, 'int32') }, ...states.flatMap(encodeVariableState)];
  try {
    await opt.setWeights(own);
  } finally {
    tf.dispose(own.map((w) => w.tensor));
  }
}

/**
 * A bitopt optimizer made by `factory` (a tf.train-signature factory: `bitopt.adam8bit`,
 * `bitopt.adam`, `bitopt.adam4bit`) from `adam`'s learning rate, betas and epsilon, holding
 * `adam`'s state: `await bitopt.fromTfjsAdam(model.optimizer, bitopt.adam8bit)`.
 */
export async function fromTfjsAdam<T extends BitoptOptimizer>(
  adam: tf.Optimizer,
  factory: (learningRate: number, beta1: number, beta2: number, epsilon: number) => T,
): Promise<T> {
  if (adam.getClassName() !== 'Adam') throw new Error(`bitopt.fromTfjsAdam: expected a tf.train.adam optimizer, got ${adam.getClassName()}`);
  const c = adam.getConfig() as { learningRate: number; beta1: number; beta2: number; epsilon: number };
  const opt = factory(c.learningRate, c.beta1, c.beta2, c.epsilon);
  await setWeightsFromTfjsAdam(opt, await adam.getWeights());
  return opt;
}
