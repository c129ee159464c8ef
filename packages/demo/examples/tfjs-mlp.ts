/**
 * A TensorFlow.js model trained with bitopt's 8-bit Adam: the two-line change.
 *
 *   npx tsx packages/demo/examples/tfjs-mlp.ts            (cpu backend)
 *   npx tsx packages/demo/examples/tfjs-mlp.ts wasm       (wasm backend)
 *
 * As in your project, it imports from the package: `import * as bitopt from 'bitopt/tfjs';`
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bitopt from 'bitopt/tfjs'; // change 1 of 2: the import

const backend = process.argv[2] ?? 'cpu';
if (backend === 'wasm') {
  const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
  setWasmPaths(new URL('dist/', pathToFileURL(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'))).pathname);
}
await tf.setBackend(backend);

// Synthetic task: which of 10 random centres a noisy 32-d point came from.
const centres = tf.randomNormal([10, 32], 0, 1, 'float32', 1);
const labels = tf.tensor1d(Array.from({ length: 2048 }, (_, i) => (i * 7) % 10), 'int32');
const x = tf.add(tf.gather(centres, labels), tf.randomNormal([2048, 32], 0, 0.8, 'float32', 2));
const y = tf.oneHot(labels, 10);

const model = tfl.sequential({
  layers: [
    tfl.layers.dense({ units: 256, inputShape: [32], activation: 'relu' }),
    tfl.layers.dense({ units: 256, activation: 'relu' }),
    tfl.layers.dense({ units: 10, activation: 'softmax' }),
  ],
});
model.compile({
  // optimizer: tf.train.adam(1e-3),
  optimizer: bitopt.adam8bit(1e-3), // change 2 of 2: the optimizer
  loss: 'categoricalCrossentropy',
  metrics: ['accuracy'],
});

const history = await model.fit(x, y, { epochs: 5, batchSize: 64, verbose: 0, validationSplit: 0.1 });
for (let e = 0; e < history.epoch.length; e++) {
  const h = history.history;
  console.log(`epoch ${e + 1}: loss ${(h.loss[e] as number).toFixed(4)}  accuracy ${(h.acc[e] as number).toFixed(3)}  val_accuracy ${(h.val_acc[e] as number).toFixed(3)}`);
}

const opt = model.optimizer as bitopt.BitoptOptimizer;
const params = model.countParams();
console.log(`backend ${tf.getBackend()}: ${params} parameters, optimizer state ${opt.stateBytes()} bytes = ${(opt.stateBytes() / params).toFixed(2)} B/parameter (tf.train.adam: 8)`);
