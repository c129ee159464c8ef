/**
 * A model saved with a bitopt optimizer (`includeOptimizer: true`), loaded where bitopt is not
 * imported (issue 18): a child process that imports only tfjs (test/helpers/load-without-bitopt.mjs)
 * gets tfjs's "Unknown layer" error, whose name part (src/tfjs/saved-name.ts) says it is a bitopt
 * optimizer and what to do; the documented inference-only load works there and predicts exactly
 * what the saving process predicts. Files written before the saved name changed still load.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bitopt from '../src/tfjs/index.js';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** A trained 8 → 64 → 1 model, saved with its 8-bit optimizer into memory. */
async function trainedAndSaved(): Promise<{ model: tfl.LayersModel; artifacts: tf.io.ModelArtifacts; x: tf.Tensor2D; y: tf.Tensor2D }> {
  const model = tfl.sequential();
  model.add(tfl.layers.dense({ units: 64, inputShape: [8], activation: 'tanh', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }));
  model.add(tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) }));
  model.compile({ optimizer: bitopt.adam8bit(1e-2, { min8bitSize: 0 }), loss: 'meanSquaredError' });
  const x = tf.randomNormal([64, 8], 0, 1, 'float32', 9) as tf.Tensor2D;
  const y = tf.sin(tf.sum(x, 1, true)) as tf.Tensor2D;
  await model.fit(x, y, { epochs: 3, batchSize: 16, shuffle: false, verbose: 0 });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })), { includeOptimizer: true });
  return { model, artifacts: artifacts!, x, y };
}

const weightBytes = (a: tf.io.ModelArtifacts) => Buffer.from(a.weightData as ArrayBuffer);

/** Runs test/helpers/load-without-bitopt.mjs on `artifacts` (plus the data it needs) in a child process: its JSON report. */
function loadInChild(artifacts: tf.io.ModelArtifacts, extra: Record<string, unknown>): { error: string | null; continuedLoss: number[] | null; predictions: number[]; bitoptLoaded: boolean } {
  const dir = mkdtempSync(join(tmpdir(), 'bitopt-load-'));
  try {
    const file = join(dir, 'model.json');
    writeFileSync(file, JSON.stringify({ ...artifacts, weightData: weightBytes(artifacts).toString('base64'), ...extra }));
    const out = execFileSync(process.execPath, [join(import.meta.dirname, 'helpers', 'load-without-bitopt.mjs'), file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return JSON.parse(out.trim().split('\n').at(-1)!);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const dataOf = (x: tf.Tensor, y: tf.Tensor) => ({ x: Array.from(x.dataSync()), xShape: x.shape, y: Array.from(y.dataSync()), yShape: y.shape });

test('in a process without bitopt: the error names bitopt and the fix; the inference-only load predicts as the saving process does', async () => {
  const { model, artifacts, x, y } = await trainedAndSaved();
  const cfg = artifacts.trainingConfig as unknown as { optimizer_config: { class_name: string } };
  assert.equal(cfg.optimizer_config.class_name, bitopt.savedClassName('bitopt.Adam8bit'));
  const input = Array.from(tf.slice(x, [0, 0], [4, 8]).dataSync());
  const expected = Array.from((model.predict(tf.tensor(input, [4, 8])) as tf.Tensor).dataSync());
  const out = loadInChild(artifacts, { input, inputShape: [4, 8], ...dataOf(x, y) });
  assert.equal(out.bitoptLoaded, false, 'the child really has no bitopt class registered');
  assert.match(out.error!, /^Unknown layer: bitopt\.Adam8bit \(an optimizer of the npm package bitopt: import 'bitopt\/tfjs' before loading the model; to load it for inference without bitopt, see bitopt's docs\/tfjs\.md\)/);
  console.log(`# the error in a process without bitopt: ${out.error!.split('\n')[0]}`);
  assert.deepEqual(out.predictions, expected, 'inference-only load: the same predictions, bit for bit');
});

test('converted to tf.train.adam before saving (bitopt.toTfjsAdam), the model loads and trains on where bitopt is not', async () => {
  const { model, x, y } = await trainedAndSaved();
  // The portable save: swap in the equivalent tf.train.adam (8-bit state decoded to float32), then save as usual.
  model.compile({ optimizer: await bitopt.toTfjsAdam(model.optimizer as bitopt.BitoptOptimizer), loss: 'meanSquaredError' });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })), { includeOptimizer: true });
  const out = loadInChild(artifacts!, { input: [0, 0, 0, 0, 0, 0, 0, 0], inputShape: [1, 8], ...dataOf(x, y) });
  assert.equal(out.error, null);
  const here = await model.fit(x, y, { epochs: 1, batchSize: 16, shuffle: false, verbose: 0 });
  // tf.train.adam's setWeights recomputes its bias-correction powers as beta^(iter+1) instead of the running product: rounding apart.
  const rel = Math.abs(out.continuedLoss![0] - (here.history.loss[0] as number)) / (here.history.loss[0] as number);
  assert.ok(rel < 1e-5, `the child's continued loss ${out.continuedLoss} vs here ${here.history.loss}`);
});

test('with bitopt imported, both the saved name and the plain bitopt.<Class> of older files load, and training continues bit-identically', async () => {
  const { model, artifacts, x, y } = await trainedAndSaved();
  const old = structuredClone(artifacts);
  (old.trainingConfig as unknown as { optimizer_config: { class_name: string } }).optimizer_config.class_name = 'bitopt.Adam8bit';
  const continued = await model.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
  for (const a of [artifacts, old]) {
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(a));
    assert.ok(loaded.optimizer instanceof bitopt.Adam8bit);
    const h = await loaded.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
    assert.deepEqual(h.history.loss, continued.history.loss);
  }
});
