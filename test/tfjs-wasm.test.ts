/**
 * bitopt/tfjs on tfjs's wasm backend: the step runs on the CPU as on the cpu backend (data
 * read out of and written back into the wasm heap), so the parameters are bit-identical.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import * as bitopt from '../src/tfjs/index.js';

// In Node the wasm backend loads its .wasm files from a path: the package's dist folder.
const require = createRequire(import.meta.url);
setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');

async function run(backend: string, make: () => bitopt.BitoptOptimizer): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const sizes = [5003, 300];
  const vars = sizes.map((n, i) => tf.variable(tf.randomNormal([n], 0, 1, 'float32', 20 + i), true));
  const opt = make();
  for (let t = 0; t < 6; t++) {
    const grads = sizes.map((n, i) => tf.randomNormal([n], 0.1, 1, 'float32', 1 + 10 * t + i));
    opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: grads[i] })));
    tf.dispose(grads);
  }
  const out = vars.map((v) => v.dataSync() as Float32Array);
  tf.dispose(vars);
  return out;
}

test('wasm backend: the same parameters as the cpu backend, bit for bit (Adam8bit, Lion8bit, LAMB)', async () => {
  for (const make of [() => bitopt.adam8bit(1e-2, { min8bitSize: 256 }), () => bitopt.lion8bit(1e-3, { min8bitSize: 256 }), () => bitopt.lamb(1e-2)]) {
    const cpu = await run('cpu', make);
    const wasm = await run('wasm', make);
    cpu.forEach((c, i) => assert.deepEqual(wasm[i], c, `${make().getClassName()} tensor ${i}`));
  }
  await tf.setBackend('cpu');
});

test('wasm backend: model.fit with adam8bit trains', async () => {
  await tf.setBackend('wasm');
  const x = tf.randomNormal([128, 16], 0, 1, 'float32', 1);
  const y = tf.sin(tf.sum(x, 1, true));
  const m = tfl.sequential({ layers: [
    tfl.layers.dense({ units: 128, inputShape: [16], activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
    tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
  ] });
  m.compile({ optimizer: bitopt.adam8bit(3e-3), loss: 'meanSquaredError' });
  const h = await m.fit(x, y, { epochs: 20, batchSize: 32, shuffle: false, verbose: 0 });
  const loss = h.history.loss as number[];
  assert.ok(loss.at(-1)! < 0.7 * loss[0], `loss fell from ${loss[0]} to ${loss.at(-1)}`);
  tf.dispose([x, y]);
  await tf.setBackend('cpu');
});
