// A process with tfjs only (no bitopt, no tsx): loads a model saved by bitopt with its optimizer.
// argv[2]: a JSON file { modelTopology, weightSpecs, weightData (base64), trainingConfig, input, inputShape, x, xShape, y, yShape }.
// Prints one JSON line: the error tf.loadLayersModel gives, and the inference-only load's predictions.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';

await tf.setBackend('cpu');
const saved = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const b = Buffer.from(saved.weightData, 'base64');
const artifacts = { ...saved, weightData: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) };
let error = null;
let continuedLoss = null;
try {
  const full = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
  // Loaded with its optimizer (a tf.train one): continue training one epoch on the saved data.
  const h = await full.fit(tf.tensor(saved.x, saved.xShape), tf.tensor(saved.y, saved.yShape), { epochs: 1, batchSize: 16, shuffle: false, verbose: 0 });
  continuedLoss = h.history.loss;
} catch (e) {
  error = e.message;
}
// The documented inference-only path: drop the training config (the optimizer and its weights are then ignored).
const model = await tfl.loadLayersModel({ load: async () => ({ ...artifacts, trainingConfig: undefined }) });
const predictions = Array.from(model.predict(tf.tensor(saved.input, saved.inputShape)).dataSync());
console.log(JSON.stringify({ error, continuedLoss, predictions, bitoptLoaded: Object.keys(tf.serialization.SerializationMap.getMap().classNameMap).some((k) => k.startsWith('bitopt')) }));
