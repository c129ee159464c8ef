/**
 * bitopt/tfjs as a drop-in for tf.train (issue 18): each factory with tf.train's arguments
 * follows the tf.train optimizer step for step on a real tfjs-layers model (float32 state: to
 * float32 rounding), including learning-rate changes through the property mid-training; the
 * 8-bit factories take the same arguments and use them; the hyperparameter properties and
 * getConfig/fromConfig speak tfjs's keys; what bitopt cannot compute throws, naming why.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bitopt from '../src/tfjs/index.js';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** 8 → 64 → 1 MLP with fixed initial weights (the 8×64 and 64×1 kernels, two biases). */
function mlp(): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ units: 64, inputShape: [8], activation: 'tanh', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }));
  m.add(tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }));
  return m;
}

const x = () => tf.randomNormal([64, 8], 0, 1, 'float32', 5);
const yOf = (xs: tf.Tensor) => tf.sin(tf.sum(xs, 1, true));

/** Trains 30 steps with model.fit (10 epochs × 3 batches); at epoch 5 sets the learning rate (`setLr`). */
async function trajectory(opt: tf.Optimizer, setLr: (o: tf.Optimizer) => void): Promise<{ loss: number[]; w: Float32Array[] }> {
  const m = mlp();
  m.compile({ optimizer: opt, loss: 'meanSquaredError' });
  const xs = x();
  const ys = yOf(xs);
  const h = await m.fit(xs, ys, {
    epochs: 10, batchSize: 22, shuffle: false, verbose: 0,
    callbacks: { onEpochBegin: async (epoch) => void (epoch === 5 && setLr(m.optimizer)) },
  });
  const w = m.getWeights().map((t) => t.dataSync() as Float32Array);
  tf.dispose([xs, ys]);
  return { loss: h.history.loss as number[], w };
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let d = 0;
  a.forEach((v, i) => v.forEach((e, j) => (d = Math.max(d, Math.abs(e - b[i][j])))));
  return d;
}

/** Each tf.train factory that bitopt computes, with non-default arguments, and its bitopt twins. */
const CASES = [
  { name: 'adam', args: [0.01, 0.5, 0.99, 1e-6], tf: (a: number[]) => tf.train.adam(a[0], a[1], a[2], a[3]), f32: bitopt.adam, f8: bitopt.adam8bit },
  { name: 'adam (defaults but lr)', args: [0.01], tf: (a: number[]) => tf.train.adam(a[0]), f32: bitopt.adam, f8: bitopt.adam8bit },
  { name: 'sgd', args: [0.05], tf: (a: number[]) => tf.train.sgd(a[0]), f32: bitopt.sgd, f8: bitopt.sgd8bit },
  { name: 'momentum', args: [0.02, 0.8], tf: (a: number[]) => tf.train.momentum(a[0], a[1]), f32: bitopt.momentum, f8: bitopt.momentum8bit },
] as const;

describe('tf.train twins on a tfjs-layers model (cpu)', () => {
  for (const c of CASES) {
    test(`${c.name}: bitopt's float32 twin follows tf.train step for step, learningRate changed mid-training through the property`, async () => {
      const f32 = c.f32 as unknown as (...a: number[]) => tf.Optimizer;
      // tf.train.sgd/momentum read their learning rate from a tensor made by setLearningRate; tf.train.adam reads the property.
      const tfSet = (o: tf.Optimizer) => ('setLearningRate' in o ? (o as tf.SGDOptimizer).setLearningRate(0.003) : ((o as unknown as { learningRate: number }).learningRate = 0.003));
      const ref = await trajectory(c.tf([...c.args]), tfSet);
      const ours = await trajectory(f32(...c.args), (o) => ((o as bitopt.BitoptOptimizer).learningRate = 0.003));
      const constant = await trajectory(f32(...c.args), () => {});
      const d = maxAbsDiff(ours.w, ref.w);
      assert.ok(d < 2e-5, `max |Δw| vs tf.train.${c.name}: ${d}`);
      ours.loss.forEach((l, i) => assert.ok(Math.abs(l - ref.loss[i]) <= 1e-5 * Math.max(1, ref.loss[i]), `epoch ${i}: loss ${l} vs ${ref.loss[i]}`));
      // The property assignment did take effect (later epochs differ from the run without it).
      assert.ok(maxAbsDiff(constant.w, ours.w) > 100 * d + 1e-4, `the learning-rate change had an effect: ${maxAbsDiff(constant.w, ours.w)}`);
      console.log(`# ${c.name}: max |Δw| vs tf.train after 30 steps ${d.toExponential(2)}; final loss tf ${ref.loss.at(-1)!.toFixed(6)} bitopt ${ours.loss.at(-1)!.toFixed(6)}`);
    });
  }

  test('adam8bit(lr, 0.5): beta1 really used: the 8-bit trajectory follows tf.train.adam(lr, 0.5), not the beta1 0.9 one', async () => {
    const keep = () => {};
    // 8-bit state on every tensor so that the 8-bit path is the one tested.
    const ref05 = await trajectory(tf.train.adam(0.01, 0.5), keep);
    const ref09 = await trajectory(tf.train.adam(0.01), keep);
    const ours = await trajectory(bitopt.adam8bit(0.01, 0.5, undefined, undefined, { min8bitSize: 0, blockSize: 64 }), keep);
    const near = maxAbsDiff(ours.w, ref05.w);
    const far = maxAbsDiff(ours.w, ref09.w);
    assert.ok(near < 0.25 * far, `adam8bit(0.01, 0.5) is ${near} from tf.train.adam(0.01, 0.5) and ${far} from beta1 0.9`);
    console.log(`# adam8bit beta1 0.5: max |Δw| to tf.train.adam(·, 0.5) ${near.toExponential(2)}, to beta1 0.9 ${far.toExponential(2)}`);
  });
});

describe('arguments, properties and config as tfjs has them', () => {
  test('defaults are tf.train\'s: epsilon the backend\'s, plain SGD, bitopt options after the positional ones', () => {
    assert.deepEqual(bitopt.adam().getConfig(), tf.train.adam().getConfig());
    assert.deepEqual(bitopt.adam8bit(2e-4, 0.5).getConfig(), tf.train.adam(2e-4, 0.5).getConfig());
    assert.equal(tf.backend().epsilon(), 1e-7);
    assert.deepEqual(bitopt.sgd(0.1).getConfig(), { learningRate: 0.1, momentum: 0 });
    assert.deepEqual(bitopt.momentum(0.1, 0.9, false).getConfig(), { learningRate: 0.1, momentum: 0.9 });
    // The bitsandbytes-style call still works: an object after the learning rate is bitopt's options.
    assert.deepEqual(bitopt.adam8bit(1e-3, { betas: [0.9, 0.95], blockSize: 2048 }).getConfig(), { learningRate: 1e-3, beta1: 0.9, beta2: 0.95, epsilon: 1e-7, blockSize: 2048 });
    assert.equal(bitopt.adam8bit(1e-3, 0.9, 0.999, 1e-8, { min8bitSize: 0 }).getConfig().epsilon, 1e-8);
  });

  test('careless arguments throw, naming the argument and the fix', () => {
    assert.throws(() => bitopt.adam8bit(1e-3, 0.5, undefined, undefined, { betas: [0.9, 0.99] }), /'betas' is given both as an argument of tf.train.adam and in the options/);
    assert.throws(() => bitopt.adam8bit('1e-3' as unknown as number), /learningRate \(argument 1\) must be a number, got the string '1e-3'/);
    assert.throws(() => (bitopt.adam as (...a: unknown[]) => unknown)(1e-3, {}, 0.9), /the options object must be the last argument/);
    assert.throws(() => (bitopt.sgd as (...a: unknown[]) => unknown)(0.1, 0.9), /takes at most 1 positional arguments \(learningRate\)/);
    assert.throws(() => bitopt.sgd(), /learningRate is required \(tf.train.sgd has no default for it\)/);
    assert.throws(() => bitopt.momentum(0.1), /momentum is required/);
    assert.throws(() => bitopt.momentum(0.1, 0.9, true), /useNesterov = true is not supported: bitopt's SGD rule .* has no Nesterov variant/);
    assert.throws(() => bitopt.adam(1e-3, 1.5), /betas\[0\]/);
  });

  test('tf.train optimizers bitopt cannot compute throw why, never train something else', () => {
    for (const [f, re] of [
      [bitopt.rmsprop, /bitopt.rmsprop: not supported: tf.train.rmsprop computes .*epsilon inside the square root/],
      [bitopt.rmsprop8bit, /bitopt.rmsprop8bit: not supported/],
      [bitopt.adagrad8bit, /bitopt.adagrad8bit: not supported: tf.train.adagrad starts its accumulator at initialAccumulatorValue/],
      [bitopt.adadelta, /bitopt.adadelta: not supported: bitopt has no Adadelta rule/],
      [bitopt.adamax8bit, /bitopt.adamax8bit: not supported: Adamax's state u = max\(beta2·u, \|g\|\) needs a maximum/],
    ] as const) assert.throws(() => (f as (...a: unknown[]) => unknown)(0.01), re);
  });

  test('hyperparameter properties: readable, assignable, validated (a bad value throws and changes nothing)', () => {
    const opt = bitopt.adam8bit(1e-3, 0.9, 0.999, 1e-7);
    assert.deepEqual([opt.learningRate, opt.beta1, opt.beta2, opt.epsilon], [1e-3, 0.9, 0.999, 1e-7]);
    opt.learningRate = 1e-4;
    opt.beta1 = 0.5;
    opt.epsilon = 1e-6;
    assert.deepEqual(opt.getConfig(), { learningRate: 1e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-6 });
    assert.throws(() => (opt.learningRate = -1), /lr must be a finite number in \[0, 10000\]/);
    assert.throws(() => (opt.beta2 = 1), /betas\[1\]/);
    assert.throws(() => ((opt as unknown as { learningRate: unknown }).learningRate = '1e-3'), /lr/);
    assert.deepEqual(opt.getConfig(), { learningRate: 1e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-6 }, 'nothing changed');
    const sgd = bitopt.momentum(0.1, 0.9);
    sgd.momentum = 0.5;
    assert.equal(sgd.getConfig().momentum, 0.5);
    assert.ok(!('beta1' in sgd), 'SGD has no beta1');
  });

  test('fromConfig reads tfjs\'s keys, bitopt\'s, or both (agreeing); tf.train.momentum\'s useNesterov false', () => {
    const [cls, fromConfig] = tf.serialization.SerializationMap.getMap().classNameMap['bitopt.Adam8bit'];
    const a = fromConfig(cls, tf.train.adam(0.02, 0.8, 0.9, 1e-5).getConfig()) as bitopt.Adam8bit;
    assert.deepEqual(a.getConfig(), { learningRate: 0.02, beta1: 0.8, beta2: 0.9, epsilon: 1e-5 });
    const b = fromConfig(cls, { lr: 0.02, betas: [0.8, 0.9], eps: 1e-5, blockSize: 64 }) as bitopt.Adam8bit;
    assert.deepEqual(b.getConfig(), { learningRate: 0.02, beta1: 0.8, beta2: 0.9, epsilon: 1e-5, blockSize: 64 });
    assert.throws(() => fromConfig(cls, { learningRate: 0.02, lr: 0.03 }), /'learningRate' and 'lr' both given, with different values/);
    const [scls, sFromConfig] = tf.serialization.SerializationMap.getMap().classNameMap['bitopt.SGD'];
    assert.equal((sFromConfig(scls, tf.train.momentum(0.1, 0.7).getConfig()) as bitopt.SGD).momentum, 0.7);
    assert.throws(() => sFromConfig(scls, tf.train.momentum(0.1, 0.7, true).getConfig()), /useNesterov true is not supported/);
  });
});

describe('disposed variables (issue 13)', () => {
  test('a disposed variable\'s state is not in getWeights', async () => {
    const a = tf.variable(tf.ones([300]), true, 'dropin_disposed_a');
    const b = tf.variable(tf.ones([200]), true, 'dropin_disposed_b');
    const opt = bitopt.adam(1e-2);
    opt.applyGradients({ dropin_disposed_a: tf.fill([300], 0.5), dropin_disposed_b: tf.fill([200], 0.5) });
    const names = async () => (await opt.getWeights()).map((w) => w.name).filter((n) => n.endsWith('/header'));
    assert.deepEqual(await names(), ['dropin_disposed_a/bitopt/header', 'dropin_disposed_b/bitopt/header']);
    a.dispose();
    assert.deepEqual(await names(), ['dropin_disposed_b/bitopt/header']);
    b.dispose();
    opt.dispose();
  });
});

describe('a schedule right after loading', () => {
  test('learningRate assigned after setWeights and before the next step wins over the restored one', async () => {
    const v = tf.variable(tf.ones([300]), true, 'dropin_restored_lr');
    const first = bitopt.adam8bit(1e-2);
    first.applyGradients({ dropin_restored_lr: tf.fill([300], 0.5) });
    const saved = await first.getWeights();
    const before = Float32Array.from(v.dataSync());
    // Restored with lr 1e-2 in the state; the user's schedule then sets 0 (a frozen step leaves v as it is).
    const resumed = bitopt.adam8bit(1e-2);
    await resumed.setWeights(saved);
    resumed.learningRate = 0;
    resumed.applyGradients({ dropin_restored_lr: tf.fill([300], 0.5) });
    assert.deepEqual(Float32Array.from(v.dataSync()), before);
    // Without the assignment the restored learning rate applies: the same step moves v.
    const other = bitopt.adam8bit(0);
    await other.setWeights(saved);
    other.applyGradients({ dropin_restored_lr: tf.fill([300], 0.5) });
    assert.notDeepEqual(Float32Array.from(v.dataSync()), before);
    [first, resumed, other].forEach((o) => o.dispose());
    v.dispose();
  });
});
