import assert from 'node:assert/strict';
import { it } from 'node:test';

it("resolves `import … from 'bitopt'` from the repository root (built package)", async () => {
  const bitopt = await import('bitopt');
  for (const name of ['Adam8bit', 'AdamW8bit', 'SGD8bit', 'RMSprop8bit', 'Adagrad8bit', 'Lion8bit', 'LAMB8bit', 'LARS8bit', 'AdEMAMix8bit', 'Adam', 'AdamW', 'SGD', 'RMSprop', 'Adagrad', 'Lion', 'LAMB', 'LARS', 'AdEMAMix']) {
    assert.equal(typeof (bitopt as Record<string, unknown>)[name], 'function', name);
  }
  const map = bitopt.createDynamicMap(true);
  const x = Float32Array.from({ length: 3000 }, (_, i) => Math.sin(i));
  const { codes, absmax } = bitopt.quantizeBlockwise(x, { map, blockSize: 2048 });
  const y = bitopt.dequantizeBlockwise(codes, absmax, { map, blockSize: 2048 });
  assert.ok(y.every((v, i) => Math.abs(v - x[i]) < 0.01));
  const p = new Float32Array(4096).fill(1);
  const opt = new bitopt.Adam8bit([p], { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
  await opt.step([new Float32Array(4096).fill(1)]);
  assert.ok(Math.abs(p[0] - (1 - 1e-3)) < 1e-6);
});
