/**
 * One update job run by the reference kernel and by a kernel under test, from the same random
 * parameters, gradients (with non-finite entries) and blockwise states: the setup the WebAssembly
 * kernel's bit-identity tests share (rules4, wasm-segments).
 */
import { Blockwise4State, Blockwise8State, createReferenceKernel, RULES, type CpuKernel, type StateStore, type UpdateJob } from '../../src/index.js';
import { defaultOptions } from '../../src/optim/options.js';
import { createState } from '../../src/optim/state.js';
import { rng } from './float64-rules.js';

export type Blockwise = Blockwise8State | Blockwise4State;

/** Values over many orders of magnitude, both signs, some exact zeros. */
export function wide(n: number, rand: () => number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (rand() < 0.03 ? 0 : (rand() < 0.5 ? -1 : 1) * scale * 10 ** (-8 * rand() ** 2)));
}

/** The rule's states at `bits`, filled with wide values; block `zeroBlock` all zero. */
function randomStates(rule: string, bits: 8 | 4, n: number, blockSize: number, rand: () => number, zeroBlock: number): Blockwise[] {
  return RULES[rule].states.map((sign, k) => {
    const s = createState(bits === 8 ? 'blockwise8' : 'blockwise4', sign, n, blockSize) as Blockwise;
    const v = wide(n, rand, k === 1 ? 1e-3 : 1e-2);
    if (sign === 'unsigned') v.forEach((x, i) => (v[i] = Math.abs(x)));
    v.fill(0, Math.min(n, zeroBlock * blockSize), Math.min(n, (zeroBlock + 1) * blockSize));
    for (let start = 0; start < n; start += blockSize) s.store(start, Math.min(blockSize, n - start), v.slice(start, start + blockSize));
    return s;
  });
}

function clone(s: Blockwise): Blockwise {
  return s instanceof Blockwise8State
    ? new Blockwise8State(s.sign, s.blockSize, s.map, s.codes.slice(), s.absmax.slice())
    : new Blockwise4State(s.sign, s.blockSize, s.map, s.codes.slice(), s.absmax.slice(), s.length);
}

export interface CaseShape {
  bits: 8 | 4;
  n: number;
  blockSize: number;
  /** Step number t of the coefficients. */
  t: number;
  gradScale?: number;
  /** Gradient indices set to NaN, +Infinity, -Infinity (by index mod 3). */
  nonFiniteAt: number[];
  zeroBlock: number;
  /** A gradient whose square overflows float32 at index 10 (Adam, Adagrad: saturation). */
  overflow?: boolean;
}

/** The job run by the reference kernel (`ref`) and by `kernel` (`got`), and the starting parameters. */
export function referenceAndKernel(rule: string, shape: CaseShape, kernel: CpuKernel, seed: number): { ref: UpdateJob; got: UpdateJob; param: Float32Array } {
  const r = RULES[rule];
  const rand = rng(seed);
  const param = wide(shape.n, rand, 1);
  const grad = wide(shape.n, rand, 0.1);
  for (const i of shape.nonFiniteAt) grad[i] = [NaN, Infinity, -Infinity][i % 3];
  if (shape.overflow) grad[10] = 3e30;
  const states = randomStates(rule, shape.bits, shape.n, shape.blockSize, rand, shape.zeroBlock);
  const h = { ...defaultOptions(r), lr: 1e-2, weightDecay: 1e-3 };
  const job = (s: StateStore[]): UpdateJob => ({
    rule: r, param: param.slice(), grad, states: s, coefficients: r.coefficients(h, shape.t), gradScale: shape.gradScale ?? 1, blockSize: shape.blockSize,
  });
  const ref = job(states.map(clone));
  const got = job(states.map(clone));
  if (r.usesTrustRatio) {
    ref.coefficients.trust = 0.5;
    got.coefficients.trust = 0.5;
  }
  createReferenceKernel().update(ref);
  kernel.update(got);
  return { ref, got, param };
}
