/**
 * Moving Adam state between bitopt and tf.train.adam (src/tfjs/adam-interop.ts, issue 18): the
 * weights have tf.train.adam's layout (checked against tf.train.adam's own getWeights), a moved
 * optimizer continues like the original (float32: to float32 rounding; 8-bit: within its
 * quantization error), round trips are exact, and what tf.train.adam cannot hold is refused.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensor } from '@tensorflow/tfjs-core/dist/tensor_types.js';
import '@tensorflow/tfjs-backend-cpu';
// For its side effect: tfjs-layers registers tfjs-core's gradients (as the @tensorflow/tfjs union package does).
import '@tensorflow/tfjs-layers';
import { stateMap } from '../src/codecs/index.js';
import * as bitopt from '../src/tfjs/index.js';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const LR = 1e-2;
const B1 = 0.8;
const B2 = 0.99;
const EPS = 1e-6;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** A 64 → 128 → 1 network (the 8192-element kernel gets 8-bit state; the rest stays float32 below min8bitSize) and its data. */
function problem() {
  const r = rng(5);
  const x = tf.tensor2d(Array.from({ length: 128 * 64 }, () => r() * 2 - 1), [128, 64]);
  const y = tf.tensor2d(Array.from({ length: 128 }, () => r() * 2 - 1), [128, 1]);
  const init = [
    tf.tensor(Array.from({ length: 64 * 128 }, () => (r() * 2 - 1) * 0.2), [64, 128]),
    tf.zeros([128]),
    tf.tensor(Array.from({ length: 128 }, () => (r() * 2 - 1) * 0.2), [128, 1]),
  ];
  return { x, y, init };
}
type Problem = ReturnType<typeof problem>;

const vars = (p: Problem) => p.init.map((t) => tf.variable(t.clone()));
const lossOf = (p: Problem, [w1, b1, w2]: tf.Variable[]) => tf.losses.meanSquaredError(p.y, tf.matMul(tf.tanh(tf.add(tf.matMul(p.x, w1), b1)), w2)) as tf.Scalar;

function train(opt: tf.Optimizer, p: Problem, v: tf.Variable[], steps: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const c = opt.minimize(() => lossOf(p, v), true, v)!;
    out.push(c.dataSync()[0]);
    c.dispose();
  }
  return out;
}

/** `a` trained 10 steps by `opt`; `b` fresh variables holding the same weights, for the optimizer the state moves to. */
function trainedTen(p: Problem, opt: tf.Optimizer): { a: tf.Variable[]; b: tf.Variable[] } {
  const a = vars(p);
  const b = vars(p);
  train(opt, p, a, 10);
  b.forEach((v, i) => v.assign(a[i]));
  return { a, b };
}

/** Continues the original on `a` and the moved optimizer on `b` for 10 steps; the worst relative difference of their losses. */
function continuedGap(p: Problem, original: tf.Optimizer, a: tf.Variable[], moved: tf.Optimizer, b: tf.Variable[]): { worst: number; la: number[]; lb: number[] } {
  const la = train(original, p, a, 10);
  const lb = train(moved, p, b, 10);
  return { worst: Math.max(...la.map((l, i) => Math.abs(l - lb[i]) / l)), la, lb };
}

const values = async (w: NamedTensor[]) => Promise.all(w.map(async (x) => ({ name: x.name, dtype: x.tensor.dtype, shape: x.tensor.shape, data: Float32Array.from(await x.tensor.data()) })));

describe('bitopt → tf.train.adam', () => {
  test('the weights have tf.train.adam layout: iter, every <var>/m, then every <var>/v, shapes and order as tf.train.adam writes them', async () => {
    const p = problem();
    const a = vars(p);
    const b = vars(p);
    const tfOpt = tf.train.adam(LR, B1, B2, EPS);
    const ours = bitopt.adam(LR, B1, B2, EPS);
    train(tfOpt, p, a, 5);
    train(ours, p, b, 5);
    const theirs = await values(await tfOpt.getWeights());
    const moved = await values(await bitopt.toTfjsAdamWeights(ours));
    assert.deepEqual(moved.map((w) => [w.name.replace(/^.*\//, ''), w.shape, w.dtype]), theirs.map((w) => [w.name.replace(/^.*\//, ''), w.shape, w.dtype]));
    assert.deepEqual(moved.map((w) => w.name), ['iter', ...b.map((v) => `${v.name}/m`), ...b.map((v) => `${v.name}/v`)]);
    assert.equal(moved[0].data[0], 5);
    // The same m and v as tf.train.adam's after the same 5 steps (both float32; rounding apart).
    for (let i = 1; i < moved.length; i++) {
      const scale = theirs[i].data.reduce((s, e) => Math.max(s, Math.abs(e)), 0);
      const d = moved[i].data.reduce((s, e, j) => Math.max(s, Math.abs(e - theirs[i].data[j])), 0);
      assert.ok(d <= 1e-4 * scale, `${moved[i].name}: max |Δ| ${d} vs tf.train.adam's (scale ${scale})`);
    }
    tfOpt.dispose();
    ours.dispose();
  });

  for (const [label, make, bound] of [
    ['bitopt.adam (float32)', bitopt.adam, 5e-5],
    ['bitopt.adam8bit', bitopt.adam8bit, 2e-2],
    ['bitopt.adam4bit', bitopt.adam4bit, 1e-1],
  ] as const) {
    test(`${label} → toTfjsAdam → tf.train.adam continues like the original`, async () => {
      const p = problem();
      const orig = make(LR, B1, B2, EPS);
      const { a, b } = trainedTen(p, orig);
      const moved = await bitopt.toTfjsAdam(orig);
      assert.deepEqual(moved.getConfig(), { learningRate: LR, beta1: B1, beta2: B2, epsilon: EPS });
      // float32: the same update up to rounding; 8/4-bit: the original keeps quantizing m and v each step, tf.train.adam does not.
      const { worst, la, lb } = continuedGap(p, orig, a, moved, b);
      assert.ok(worst <= bound, `${label}: continued losses ${lb} vs ${la}: worst relative ${worst} > ${bound}`);
      console.log(`# ${label} → tf.train.adam: 10 more steps, worst relative loss difference ${worst.toExponential(2)}; final ${la.at(-1)!.toPrecision(6)} vs ${lb.at(-1)!.toPrecision(6)}`);
      orig.dispose();
      moved.dispose();
    });
  }
});

describe('tf.train.adam → bitopt', () => {
  test('fromTfjsAdam(adam, bitopt.adam): exact state; continues like tf.train.adam to float32 rounding', async () => {
    const p = problem();
    const tfOpt = tf.train.adam(LR, B1, B2, EPS);
    const { a, b } = trainedTen(p, tfOpt);
    const ours = await bitopt.fromTfjsAdam(tfOpt, bitopt.adam);
    assert.equal(ours.learningRate, LR);
    assert.equal(ours.iterations, 10);
    // Round trip back out: the very same m and v, bit for bit (float32 state stores them as they are).
    const back = await values(await bitopt.toTfjsAdamWeights(ours));
    const orig = await values(await tfOpt.getWeights());
    back.slice(1).forEach((w, i) => assert.deepEqual(w.data, orig[i + 1].data, w.name));
    const { worst } = continuedGap(p, tfOpt, a, ours, b);
    assert.ok(worst <= 5e-5, `continued: worst relative ${worst}`);
    console.log(`# tf.train.adam → bitopt.adam: 10 more steps, worst relative loss difference ${worst.toExponential(2)}`);
    tfOpt.dispose();
    ours.dispose();
  });

  test('fromTfjsAdam(adam, bitopt.adam8bit): m and v quantized within the 8-bit map\'s largest gap × block absmax; continues within 2%', async () => {
    const p = problem();
    const tfOpt = tf.train.adam(LR, B1, B2, EPS);
    const { a, b } = trainedTen(p, tfOpt);
    const ours = await bitopt.fromTfjsAdam(tfOpt, bitopt.adam8bit);
    // The imported state as stored (8-bit codes + absmax), decoded back out before any step.
    const after = await values(await tfOpt.getWeights());
    const moved = await values(await bitopt.toTfjsAdamWeights(ours));
    const orig = after;
    assert.ok(orig.length === moved.length);
    // The kernel (8192 elements, 8-bit): m (signed map) and v (unsigned map), blocks of 256.
    for (const [k, sign] of [[1, 'signed'], [4, 'unsigned']] as const) {
      const map = stateMap(sign);
      let gap = 0;
      for (let i = 1; i < map.length; i++) gap = Math.max(gap, map[i] - map[i - 1]);
      const ref = after[k].data;
      let worst = 0;
      for (let s = 0; s < ref.length; s += 256) {
        const block = ref.subarray(s, s + 256);
        const absmax = block.reduce((m, e) => Math.max(m, Math.abs(e)), 0);
        block.forEach((e, j) => (worst = Math.max(worst, Math.abs(moved[k].data[s + j] - e) / (gap * absmax))));
      }
      // Round to nearest code: at most half the largest gap, plus float32 rounding of x/absmax and code·absmax (measured 3e-6 of a gap).
      assert.ok(worst <= 0.5 + 1e-4, `${moved[k].name}: worst |Δ| / (largest map gap ${gap.toFixed(4)} × block absmax) = ${worst}`);
      console.log(`# tf.train.adam → bitopt.adam8bit: ${moved[k].name.replace(/^.*\//, '')} of the 8192-element kernel: worst |Δ| = ${worst.toFixed(3)} × largest map gap (${gap.toFixed(4)}) × block absmax`);
    }
    const { worst } = continuedGap(p, tfOpt, a, ours, b);
    assert.ok(worst <= 2e-2, `continued: worst relative ${worst}`);
    console.log(`# tf.train.adam → bitopt.adam8bit: 10 more steps, worst relative loss difference ${worst.toExponential(2)}`);
    tfOpt.dispose();
    ours.dispose();
  });

  test('a tf.train.adam that has not stepped moves as an empty state', async () => {
    const ours = await bitopt.fromTfjsAdam(tf.train.adam(LR), bitopt.adam8bit);
    assert.equal(ours.iterations, 0);
    const w = await ours.getWeights();
    assert.equal(w.length, 1);
  });
});

describe('what tf.train.adam cannot hold is refused, naming it', () => {
  test('other rules, weight decay, clipping, variables stepped unequally, malformed weights', async () => {
    await assert.rejects(bitopt.toTfjsAdamWeights(bitopt.adamW8bit(1e-3)), /bitopt\.AdamW8bit is not tf\.train\.adam's update/);
    await assert.rejects(bitopt.toTfjsAdamWeights(bitopt.lion8bit(1e-3)), /bitopt\.Lion8bit is not tf\.train\.adam's update/);
    await assert.rejects(bitopt.toTfjsAdamWeights(bitopt.adam8bit(1e-3, { weightDecay: 0.1 })), /weightDecay 0\.1; tf\.train\.adam has no weight decay/);
    await assert.rejects(bitopt.toTfjsAdamWeights(bitopt.adam8bit(1e-3, { percentileClipping: 5 })), /percentileClipping 5; tf\.train\.adam does not clip/);
    await assert.rejects(bitopt.fromTfjsAdam(tf.train.sgd(0.1), bitopt.adam), /expected a tf\.train\.adam optimizer, got SGD/);
    await assert.rejects(bitopt.setWeightsFromTfjsAdam(bitopt.adam(), [{ name: 'x/m', tensor: tf.zeros([2]) }]), /expected tf\.train\.adam's getWeights/);
    // Two variables, one left out of a minimize: tfjs's single step count would be wrong for it.
    const p = problem();
    const v = vars(p);
    const opt = bitopt.adam(LR);
    train(opt, p, v, 2);
    opt.minimize(() => lossOf(p, v), false, [v[0]]);
    await assert.rejects(bitopt.toTfjsAdamWeights(opt), /took 2 steps but the optimizer 3/);
  });
});
