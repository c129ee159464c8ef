/**
 * StableEmbedding as a tfjs-layers layer: Xavier-uniform initialisation, layer norm of the
 * output (checked against a float64 recomputation), 32-bit optimizer state under an 8-bit
 * optimizer, serialization, and training.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bitopt from '../src/tfjs/index.js';
import * as layers from '../src/tfjs/layers.js';

before(async () => {
  await tf.setBackend('cpu');
});

const VOCAB = 64;
const DIM = 32;

function model(embedding: tfl.layers.Layer): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.inputLayer({ inputShape: [6] }));
  m.add(embedding);
  m.add(tfl.layers.globalAveragePooling1d());
  m.add(tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }));
  return m;
}

function data() {
  const ids = tf.tensor2d(Array.from({ length: 64 * 6 }, (_, i) => (i * 37 + (i >> 3) * 11) % VOCAB), [64, 6], 'float32');
  // Target: whether the ids' sum is above average (a function of the embedded tokens).
  const y = tf.tidy(() => tf.cast(tf.greater(tf.sum(ids, 1, true), 6 * VOCAB / 2), 'float32'));
  return { ids, y };
}

test('Xavier-uniform initialisation and layer-normalised output (vs float64)', () => {
  const layer = layers.stableEmbedding({ inputDim: VOCAB, outputDim: DIM, seed: 1 });
  const m = model(layer);
  const { ids } = data();
  const emb = layer.embeddingsVariable.dataSync();
  const limit = Math.sqrt(6 / (VOCAB + DIM));
  let sq = 0;
  for (const w of emb) {
    assert.ok(Math.abs(w) <= limit + 1e-7, `|w| = ${Math.abs(w)} > ${limit}`);
    sq += w * w;
  }
  // Var of U(-limit, limit) = limit²/3; 2048 samples: within 8% (4 standard errors).
  assert.ok(Math.abs(sq / emb.length / (limit * limit / 3) - 1) < 0.08, `variance ratio ${sq / emb.length / (limit * limit / 3)}`);
  // The layer output for a few ids, recomputed in float64: (e - mean)/sqrt(var + 1e-5).
  const sub = tfl.model({ inputs: m.inputs, outputs: layer.output as tfl.SymbolicTensor });
  const out = (sub.predict(ids) as tf.Tensor).dataSync();
  const idv = ids.dataSync();
  for (const pos of [0, 5, 100, 383]) {
    const row = Array.from(emb.subarray(idv[pos] * DIM, idv[pos] * DIM + DIM));
    const mean = row.reduce((a, b) => a + b, 0) / DIM;
    const v = row.reduce((a, b) => a + (b - mean) ** 2, 0) / DIM;
    row.forEach((e, k) => {
      const want = (e - mean) / Math.sqrt(v + 1e-5);
      assert.ok(Math.abs(out[pos * DIM + k] - want) < 1e-5 * Math.max(1, Math.abs(want)), `pos ${pos} k ${k}: ${out[pos * DIM + k]} vs ${want}`);
    });
  }
  assert.throws(() => layers.stableEmbedding({ inputDim: 0, outputDim: 4 }), /inputDim must be a positive integer/);
});

test('its matrix keeps 32-bit state under Adam8bit (a plain embedding of the same size gets 8-bit); training works', async () => {
  const { ids, y } = data();
  const stable = model(layers.stableEmbedding({ inputDim: VOCAB, outputDim: DIM, seed: 2 }));
  const plain = model(tfl.layers.embedding({ inputDim: VOCAB, outputDim: DIM, embeddingsInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }));
  const formats = async (m: tfl.Sequential) => {
    const opt = bitopt.adam8bit(1e-2, { min8bitSize: 1024 });
    m.compile({ optimizer: opt, loss: 'meanSquaredError' });
    const h = await m.fit(ids, y, { epochs: 15, batchSize: 32, verbose: 0 });
    const losses = h.history.loss as number[];
    assert.ok(losses.at(-1)! < 0.7 * losses[0], `loss fell from ${losses[0]} to ${losses.at(-1)}`);
    const states = await bitopt.decodeVariableStates((await opt.getWeights()).slice(1));
    const big = states.find((s) => s.shape.join() === `${VOCAB},${DIM}`)!;
    return { format: big.dict.tensors[0].states.map((s) => s.format), overrides: big.dict.overrides, bytes: opt.stateBytes() };
  };
  const s = await formats(stable);
  const p = await formats(plain);
  assert.deepEqual(s.format, ['float32', 'float32']);
  assert.deepEqual(s.overrides, [{ param: 0, options: { optimBits: 32 } }]);
  assert.deepEqual(p.format, ['blockwise8', 'blockwise8']);
  // Embedding state: 8 B/param (32-bit) vs ~2 B/param; the rest (gamma, beta, dense) is float32 either way.
  assert.equal(s.bytes - p.bytes, VOCAB * DIM * 8 - (VOCAB * DIM * 2 + 2 * 4 * Math.ceil(VOCAB * DIM / 256)) + 2 * DIM * 8);
});

test('serializes (bitopt.StableEmbedding) and reloads with its optimizer', async () => {
  const { ids, y } = data();
  const m = model(layers.stableEmbedding({ inputDim: VOCAB, outputDim: DIM, seed: 4, epsilon: 1e-4 }));
  m.compile({ optimizer: bitopt.adam8bit(1e-2), loss: 'meanSquaredError' });
  await m.fit(ids, y, { epochs: 2, batchSize: 16, verbose: 0 });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await m.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })), { includeOptimizer: true });
  assert.match(JSON.stringify(artifacts!.modelTopology), /"class_name":"bitopt.StableEmbedding"/);
  const back = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
  const layer = back.layers.find((l) => l instanceof layers.StableEmbedding) as layers.StableEmbedding;
  assert.ok(layer, 'the reloaded model has a StableEmbedding');
  assert.equal(layer.epsilon, 1e-4);
  assert.deepEqual((back.predict(ids) as tf.Tensor).dataSync(), (m.predict(ids) as tf.Tensor).dataSync());
  // Continuing both gives the same weights (the override came back with the state).
  await m.fit(ids, y, { epochs: 2, batchSize: 16, verbose: 0, shuffle: false });
  await back.fit(ids, y, { epochs: 2, batchSize: 16, verbose: 0, shuffle: false });
  back.getWeights().forEach((w, i) => assert.deepEqual(w.dataSync(), m.getWeights()[i].dataSync()));
});

test('packaging (issue 17): bitopt/tfjs loads without @tensorflow/tfjs-layers; StableEmbedding is in bitopt/tfjs/layers', async () => {
  // A child process where resolving @tensorflow/tfjs-layers fails, as for a user with tfjs-core only.
  const { spawnSync } = await import('node:child_process');
  const hook = `data:text/javascript,${encodeURIComponent(`export async function resolve(s, c, next) {
    if (s.startsWith('@tensorflow/tfjs-layers')) { const e = new Error('Cannot find package ' + s); e.code = 'ERR_MODULE_NOT_FOUND'; throw e; }
    return next(s, c);
  }`)}`;
  const run = (entry: string) => spawnSync(process.execPath, [
    '--import', 'tsx', '--input-type=module', '-e',
    `import { register } from 'node:module'; register(${JSON.stringify(hook)});
     const m = await import(${JSON.stringify(new URL(entry, import.meta.url).href)});
     console.log(Object.keys(m).filter((k) => /^(adam8bit|StableEmbedding|stableEmbedding)$/.test(k)).sort().join(','));`,
  ], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname });
  const core = run('../src/tfjs/index.ts');
  assert.equal(core.status, 0, core.stderr);
  assert.equal(core.stdout.trim(), 'adam8bit', 'bitopt/tfjs has the optimizers and no StableEmbedding');
  // The layers entry does need tfjs-layers, and says so.
  const withLayers = run('../src/tfjs/layers.ts');
  assert.notEqual(withLayers.status, 0);
  assert.match(withLayers.stderr, /Cannot find package @tensorflow\/tfjs-layers/);
  assert.deepEqual(Object.keys(layers).sort(), ['StableEmbedding', 'optimOverrideOf', 'registerOptimOverride', 'stableEmbedding']);
});
