/**
 * Real tfjs programs, written the way tfjs users write them, run with `tf.train.adam` and with
 * the two-line change (`import * as bitopt from 'bitopt/tfjs'`, `bitopt.adam(…)` /
 * `bitopt.adam8bit(…)`), issue 18:
 *   (a) a layers classifier trained with `model.fit` and a step schedule in `onEpochBegin`
 *       (`model.optimizer.learningRate = …`);
 *   (b) a custom loop over raw variables with `optimizer.minimize`, the learning rate changed
 *       mid-training through the property, checkpointed through tf.io.encodeWeights;
 *   (c) an addition RNN (tfjs-examples' addition-rnn, smaller): LSTM encoder, RepeatVector,
 *       LSTM decoder, TimeDistributed softmax.
 * For each: bitopt's float32 twin follows tf.train step for step to float32 rounding; 8-bit ends
 * within a stated band of the float32 loss; saving (with the optimizer), reloading and continuing
 * is bit-identical to the uninterrupted run.
 *
 * Tolerances. bitopt computes Adam's step as lr·sqrt(1-b2^t)/(1-b1^t)·m/(sqrt(v)+eps·sqrt(1-b2^t))
 * (docs/architecture.md §1.3), tfjs as lr·m̂/(sqrt(v̂)+eps) with separately rounded m̂ and v̂:
 * equal in exact arithmetic, a few float32 ulps apart per step. Those ulps (relative 6e-8 each)
 * are what the twins may differ by; through tens of steps of training they grow (most in (a):
 * 64 steps of a ReLU net whose loss falls 15×, measured up to 8e-5 relative; (b) 8e-6, (c) 7e-7),
 * so the bound on each epoch's loss is relative FLOAT32_TRAJECTORY = 5e-4, while a real difference
 * in the update (a wrong beta, epsilon, bias correction or learning rate) moves the loss by 1e-2
 * or more (in (a) the run without the schedule must differ by 100× the bound).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensor } from '@tensorflow/tfjs-core/dist/tensor_types.js';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bitopt from '../src/tfjs/index.js';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** Relative bound on the float32 twin's loss against tf.train's, per epoch/step (see the header). */
const FLOAT32_TRAJECTORY = 5e-4;
/**
 * 8-bit's final loss within ±2% of float32's: block-wise 8-bit m and v carry ~1% relative error
 * per element (docs/architecture.md §1), which perturbs the trajectory like a slightly different
 * seed; measured differences are below 0.1%, a broken 8-bit state (wrong map, absmax, sign) is off
 * by far more.
 */
const BAND_8BIT = 0.02;

/** The three optimizers of every program: tf.train's and the two-line change in float32 and 8 bits. */
const VARIANTS = [
  ['tf.train.adam', (lr: number) => tf.train.adam(lr)],
  ['bitopt.adam', (lr: number) => bitopt.adam(lr)],
  ['bitopt.adam8bit', (lr: number) => bitopt.adam8bit(lr)],
] as const;
type Variant = (typeof VARIANTS)[number][0];

/** A seeded uniform [0, 1) generator (LCG): data that is the same in every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** model.save with the optimizer into memory (tf.io.withSaveHandler), then tf.loadLayersModel from it (tf.io.fromMemory). */
async function saveAndLoad(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
    { includeOptimizer: true },
  );
  return tfl.loadLayersModel(tf.io.fromMemory(saved!));
}

const weightsOf = (m: tfl.LayersModel) => m.getWeights().map((w) => Float32Array.from(w.dataSync()));

function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
}

/** What one program reports per optimizer: its losses uninterrupted, and those of the save → reload → continue run. */
interface Run {
  loss: number[];
  weights: Float32Array[];
  resumedLoss: number[];
  resumedWeights: Float32Array[];
  stateBytes?: number;
}

/** Checks the program's three runs against each other and prints the comparison. */
function compare(program: string, runs: Record<Variant, Run>, band8: number): void {
  const tfRun = runs['tf.train.adam'];
  const f32 = runs['bitopt.adam'];
  const b8 = runs['bitopt.adam8bit'];
  const worst = Math.max(...f32.loss.map((l, i) => relDiff(l, tfRun.loss[i])));
  assert.ok(worst <= FLOAT32_TRAJECTORY, `${program}: float32 twin vs tf.train: worst relative loss difference ${worst} > ${FLOAT32_TRAJECTORY} (losses ${f32.loss} vs ${tfRun.loss})`);
  const end8 = b8.loss.at(-1)!;
  const end32 = f32.loss.at(-1)!;
  assert.ok(Math.abs(end8 - end32) <= band8 * end32, `${program}: 8-bit final loss ${end8} vs float32 ${end32}: outside ±${band8 * 100}%`);
  assert.ok(b8.stateBytes! < 0.5 * f32.stateBytes!, `${program}: 8-bit state really used (${b8.stateBytes} B vs ${f32.stateBytes} B float32)`);
  for (const v of ['bitopt.adam', 'bitopt.adam8bit'] as const) {
    assert.deepEqual(runs[v].resumedLoss, runs[v].loss.slice(-runs[v].resumedLoss.length), `${program} ${v}: continued losses equal the uninterrupted run's`);
    runs[v].resumedWeights.forEach((w, i) => assert.deepEqual(w, runs[v].weights[i], `${program} ${v}: weight ${i} after continuing equals the uninterrupted run's`));
  }
  const tfResumed = tfRun.resumedLoss.every((l, i) => l === tfRun.loss.at(i - tfRun.resumedLoss.length));
  const fmt = (r: Run) => r.loss.at(-1)!.toPrecision(6);
  console.log(
    `# ${program}: final loss tf.train.adam ${fmt(tfRun)} | bitopt.adam ${fmt(f32)} (worst rel. diff per epoch ${worst.toExponential(1)}) | ` +
      `bitopt.adam8bit ${fmt(b8)} (${(((end8 - end32) / end32) * 100).toFixed(2)}% vs float32); state ${f32.stateBytes} B float32, ${b8.stateBytes} B 8-bit; ` +
      `tf.train.adam's own save/reload continuation bit-identical: ${tfResumed}`,
  );
}

/**
 * One layers program under every variant: trained uninterrupted for `epochs`, and again to
 * `saveAt`, saved with its optimizer, reloaded and continued to `epochs`.
 */
async function runLayersProgram(
  tag: string,
  p: { build: () => tfl.LayersModel; fit: (m: tfl.LayersModel, from: number, to: number) => Promise<tfl.History>; epochs: number; saveAt: number; accuracy: string },
): Promise<Record<Variant, Run>> {
  const runs = {} as Record<Variant, Run>;
  for (const [name, make] of VARIANTS) {
    const whole = p.build();
    whole.compile({ optimizer: make(1e-2), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const h = await p.fit(whole, 0, p.epochs);
    const part = p.build();
    part.compile({ optimizer: make(1e-2), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    await p.fit(part, 0, p.saveAt);
    const loaded = await saveAndLoad(part);
    const h2 = await p.fit(loaded, p.saveAt, p.epochs);
    runs[name] = {
      loss: h.history.loss as number[],
      weights: weightsOf(whole),
      resumedLoss: h2.history.loss as number[],
      resumedWeights: weightsOf(loaded),
      stateBytes: whole.optimizer instanceof bitopt.BitoptOptimizer ? whole.optimizer.stateBytes() : undefined,
    };
    console.log(`#   ${tag} ${name}: loss ${runs[name].loss.map((l) => l.toFixed(5)).join(' ')}; final ${p.accuracy} ${(h.history.acc.at(-1) as number).toFixed(3)}`);
    tf.dispose([whole, part, loaded].map((m) => m.getWeights()).flat());
  }
  return runs;
}

describe('(a) layers classifier: model.fit with a learning-rate schedule in onEpochBegin', () => {
  const N = 512;
  const EPOCHS = 8;
  const SAVE_AT = 4;
  /** 16 features in [-1, 1]; 3 classes by the largest of three fixed sine projections (learnable, not separable at once). */
  function data(): { x: tf.Tensor2D; y: tf.Tensor2D } {
    const r = rng(7);
    const proj = Array.from({ length: 3 * 16 }, () => r() * 2 - 1);
    const xs: number[] = [];
    const labels: number[] = [];
    for (let i = 0; i < N; i++) {
      const row = Array.from({ length: 16 }, () => r() * 2 - 1);
      const scores = [0, 1, 2].map((c) => row.reduce((s, v, j) => s + proj[c * 16 + j] * Math.sin(2 * v), 0));
      xs.push(...row);
      labels.push(scores.indexOf(Math.max(...scores)));
    }
    return { x: tf.tensor2d(xs, [N, 16]), y: tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), 3), 'float32') as tf.Tensor2D };
  }
  function buildModel(): tfl.LayersModel {
    const model = tfl.sequential();
    model.add(tfl.layers.dense({ units: 128, inputShape: [16], activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 11 }) }));
    model.add(tfl.layers.dense({ units: 128, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 12 }) }));
    model.add(tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 13 }) }));
    return model;
  }
  // The user's schedule: 1e-2, halved every 2 epochs, set through the property as tfjs users do.
  const schedule = (model: tfl.LayersModel) => ({
    onEpochBegin: async (epoch: number) => {
      (model.optimizer as unknown as { learningRate: number }).learningRate = 1e-2 * 0.5 ** Math.floor(epoch / 2);
    },
  });
  const fit = (model: tfl.LayersModel, d: ReturnType<typeof data>, from: number, to: number) =>
    model.fit(d.x, d.y, { epochs: to, initialEpoch: from, batchSize: 64, shuffle: false, verbose: 0, callbacks: schedule(model) });

  test('tf.train.adam vs bitopt.adam vs bitopt.adam8bit; save → reload → continue', async () => {
    const d = data();
    const runs = await runLayersProgram('(a)', { build: buildModel, fit: (m, from, to) => fit(m, d, from, to), epochs: EPOCHS, saveAt: SAVE_AT, accuracy: 'accuracy' });
    // The schedule must have acted: without it (constant 1e-2) the float32 trajectory differs.
    const constant = buildModel();
    constant.compile({ optimizer: bitopt.adam(1e-2), loss: 'categoricalCrossentropy' });
    const hc = await constant.fit(d.x, d.y, { epochs: EPOCHS, batchSize: 64, shuffle: false, verbose: 0 });
    const unscheduled = relDiff((hc.history.loss as number[]).at(-1)!, runs['bitopt.adam'].loss.at(-1)!);
    assert.ok(unscheduled > 100 * FLOAT32_TRAJECTORY, `the schedule changed the trajectory (final loss ${unscheduled} apart)`);
    compare('(a) model.fit + schedule', runs, BAND_8BIT);
    tf.dispose([d.x, d.y]);
  });
});

describe('(b) custom loop: optimizer.minimize over raw variables', () => {
  const STEPS = 40;
  const LR_CHANGE_AT = 15;
  const CHECKPOINT_AT = 25;
  function data(): { x: tf.Tensor2D; y: tf.Tensor2D } {
    const r = rng(21);
    const x = tf.tensor2d(Array.from({ length: 256 * 32 }, () => r() * 2 - 1), [256, 32]);
    const u = tf.tensor2d(Array.from({ length: 32 }, () => r() - 0.5), [32, 1]);
    const y = tf.tidy(() => tf.sin(tf.mul(tf.matMul(x, u), 3)));
    u.dispose();
    return { x, y: y as tf.Tensor2D };
  }
  /** A 32 → 128 → 1 tanh network as the tfjs-core guides write it: variables and a function. */
  function init(values?: tf.Tensor[]): tf.Variable[] {
    if (values) return values.map((v) => tf.variable(v.clone()));
    const r = rng(22);
    const uni = (shape: number[], limit: number) => tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b) }, () => (r() * 2 - 1) * limit), shape);
    return [uni([32, 128], Math.sqrt(6 / 160)), tf.zeros([128]), uni([128, 1], Math.sqrt(6 / 129)), tf.zeros([1])].map((t) => tf.variable(t));
  }
  // Functional ops: tfjs-core alone (without the @tensorflow/tfjs union package) has no chained x.matMul(w).
const predict = ([w1, b1, w2, b2]: tf.Variable[], x: tf.Tensor) => tf.add(tf.matMul(tf.tanh(tf.add(tf.matMul(x, w1), b1)), w2), b2);
  const lrAt = (step: number) => (step < LR_CHANGE_AT ? 2e-2 : 5e-3);

  /** Steps `from` .. `to`-1, setting the learning rate through the property each step (the user's schedule). */
  function train(opt: tf.Optimizer, vars: tf.Variable[], d: ReturnType<typeof data>, from: number, to: number): number[] {
    const losses: number[] = [];
    for (let step = from; step < to; step++) {
      (opt as unknown as { learningRate: number }).learningRate = lrAt(step);
      const cost = opt.minimize(() => tf.losses.meanSquaredError(d.y, predict(vars, d.x)) as tf.Scalar, true, vars)!;
      losses.push(cost.dataSync()[0]);
      cost.dispose();
    }
    return losses;
  }

  /** The optimizer's weights through tfjs's weight encoding (what a save handler writes), back as NamedTensors in order. */
  async function checkpoint(opt: tf.Optimizer): Promise<NamedTensor[]> {
    const weights = await opt.getWeights();
    const { data: bytes, specs } = await tf.io.encodeWeights(weights);
    const map = tf.io.decodeWeights(bytes, specs);
    return specs.map((s) => ({ name: s.name, tensor: map[s.name] }));
  }

  test('tf.train.adam vs bitopt.adam vs bitopt.adam8bit; checkpoint → new variables and optimizer → continue', async () => {
    const d = data();
    const runs = {} as Record<Variant, Run>;
    for (const [name, make] of VARIANTS) {
      const vars = init();
      const opt = make(lrAt(0));
      const loss = train(opt, vars, d, 0, STEPS);
      const partVars = init();
      const partOpt = make(lrAt(0));
      train(partOpt, partVars, d, 0, CHECKPOINT_AT);
      const saved = await checkpoint(partOpt);
      // A new process would rebuild everything: new variables (other names) from the saved values, a new optimizer.
      const resumedVars = init(partVars);
      const resumedOpt = make(lrAt(0));
      await resumedOpt.setWeights(saved);
      const resumedLoss = train(resumedOpt, resumedVars, d, CHECKPOINT_AT, STEPS);
      runs[name] = {
        loss,
        weights: vars.map((v) => Float32Array.from(v.dataSync())),
        resumedLoss,
        resumedWeights: resumedVars.map((v) => Float32Array.from(v.dataSync())),
        stateBytes: opt instanceof bitopt.BitoptOptimizer ? opt.stateBytes() : undefined,
      };
      console.log(`#   (b) ${name}: loss every 5 steps ${loss.filter((_, i) => i % 5 === 4).map((l) => l.toFixed(5)).join(' ')}`);
      [opt, partOpt, resumedOpt].forEach((o) => o.dispose());
      tf.dispose([...vars, ...partVars, ...resumedVars, ...saved.map((s) => s.tensor)]);
    }
    compare('(b) minimize loop', runs, BAND_8BIT);
    tf.dispose([d.x, d.y]);
  });
});

describe('(c) addition RNN (LSTM seq2seq, as tfjs-examples addition-rnn)', () => {
  const DIGITS = 2;
  const CHARS = '0123456789+ ';
  const IN_LEN = 2 * DIGITS + 1;
  const OUT_LEN = DIGITS + 1;
  const N = 256;
  const EPOCHS = 5;
  const SAVE_AT = 3;
  const HIDDEN = 32;
  function encode(s: string, len: number): number[] {
    const out = new Array<number>(len * CHARS.length).fill(0);
    s.padEnd(len, ' ').split('').forEach((c, i) => (out[i * CHARS.length + CHARS.indexOf(c)] = 1));
    return out;
  }
  function data(): { x: tf.Tensor3D; y: tf.Tensor3D } {
    const r = rng(31);
    const xs: number[] = [];
    const ys: number[] = [];
    for (let i = 0; i < N; i++) {
      const a = Math.floor(r() * 10 ** DIGITS);
      const b = Math.floor(r() * 10 ** DIGITS);
      xs.push(...encode(`${a}+${b}`, IN_LEN));
      ys.push(...encode(String(a + b), OUT_LEN));
    }
    return { x: tf.tensor3d(xs, [N, IN_LEN, CHARS.length]), y: tf.tensor3d(ys, [N, OUT_LEN, CHARS.length]) };
  }
  function buildModel(): tfl.LayersModel {
    const g = (seed: number) => tfl.initializers.glorotUniform({ seed });
    // tfjs-examples uses the default orthogonal recurrent initializer, which needs the chained ops of the
    // @tensorflow/tfjs union package (not a dependency here): seeded Glorot instead.
    const o = (seed: number) => tfl.initializers.glorotUniform({ seed });
    const model = tfl.sequential();
    model.add(tfl.layers.lstm({ units: HIDDEN, inputShape: [IN_LEN, CHARS.length], kernelInitializer: g(41), recurrentInitializer: o(42) }));
    model.add(tfl.layers.repeatVector({ n: OUT_LEN }));
    model.add(tfl.layers.lstm({ units: HIDDEN, returnSequences: true, kernelInitializer: g(43), recurrentInitializer: o(44) }));
    model.add(tfl.layers.timeDistributed({ layer: tfl.layers.dense({ units: CHARS.length, kernelInitializer: g(45) }) }));
    model.add(tfl.layers.activation({ activation: 'softmax' }));
    return model;
  }
  // Halve the learning rate from epoch 4 (a mid-training change through the property).
  const schedule = (model: tfl.LayersModel) => ({
    onEpochBegin: async (epoch: number) => {
      if (epoch === 4) (model.optimizer as unknown as { learningRate: number }).learningRate = 5e-3;
    },
  });
  const fit = (model: tfl.LayersModel, d: ReturnType<typeof data>, from: number, to: number) =>
    model.fit(d.x, d.y, { epochs: to, initialEpoch: from, batchSize: 64, shuffle: false, verbose: 0, callbacks: schedule(model) });

  test('tf.train.adam vs bitopt.adam vs bitopt.adam8bit; save → reload → continue', async () => {
    const d = data();
    const runs = await runLayersProgram('(c)', { build: buildModel, fit: (m, from, to) => fit(m, d, from, to), epochs: EPOCHS, saveAt: SAVE_AT, accuracy: 'char accuracy' });
    compare('(c) addition RNN', runs, BAND_8BIT);
    tf.dispose([d.x, d.y]);
  });
});
