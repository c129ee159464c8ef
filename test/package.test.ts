import assert from 'node:assert/strict';
import { it } from 'node:test';

/** Every optimizer class, in each precision: what a user imports from 'bitopt' and from 'bitopt/tfjs'. */
const RULE_NAMES = ['Adam', 'AdamW', 'SGD', 'RMSprop', 'Adagrad', 'Lion', 'LAMB', 'LARS', 'AdEMAMix', 'RAdam'];
const CLASSES = RULE_NAMES.flatMap((n) => [n, `${n}8bit`, `${n}4bit`]);

it("resolves `import … from 'bitopt'` from the repository root (built package)", async () => {
  const bitopt = await import('bitopt');
  for (const name of CLASSES) assert.equal(typeof (bitopt as Record<string, unknown>)[name], 'function', name);
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

it("steps the 4-bit and RAdam classes of the built package, with the state size docs/architecture.md gives", async () => {
  const bitopt = await import('bitopt');
  const n = 4096;
  // Step 1 of Adam moves every element by lr·g/(|g| + eps') ≈ lr, whatever the state precision.
  const p4 = new Float32Array(n).fill(1);
  const adam4 = new bitopt.Adam4bit([p4], { lr: 1e-3 });
  await adam4.step([new Float32Array(n).fill(1)]);
  assert.ok(p4.every((v) => Math.abs(v - (1 - 1e-3)) < 1e-6), `Adam4bit step 1: ${p4[0]}`);
  // Two 4-bit states of n elements at the default block of 128: n/2 code bytes + 4 B absmax per block, each.
  assert.equal(adam4.stateBytes(), 2 * (n / 2 + 4 * (n / 128)));
  // RAdam's first steps are momentum SGD with bias correction: p -= lr·m/(1-b1) = lr·g at step 1.
  const pr = new Float32Array(n).fill(1);
  const radam8 = new bitopt.RAdam8bit([pr], { lr: 1e-2 });
  await radam8.step([new Float32Array(n).fill(0.5)]);
  assert.ok(pr.every((v) => Math.abs(v - (1 - 1e-2 * 0.5)) < 1e-6), `RAdam8bit step 1: ${pr[0]}`);
  // Two 8-bit states at the default block of 256: n code bytes + 4 B absmax per block, each.
  assert.equal(radam8.stateBytes(), 2 * (n + 4 * (n / 256)));
});

it("resolves 'bitopt/tfjs' with every class and the 4-bit and RAdam factories (built package)", async () => {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend('cpu');
  const tfjs = (await import('bitopt/tfjs')) as unknown as Record<string, unknown>;
  for (const name of CLASSES) assert.equal(typeof tfjs[name], 'function', `bitopt/tfjs ${name}`);
  const factories: [string, unknown[], string][] = [
    ['adam4bit', [2e-3], 'Adam4bit'],
    ['adamW4bit', [2e-3], 'AdamW4bit'],
    // 4-bit SGD does not keep parity with float32 (docs/quality-4bit.md): an explicit opt-in.
    ['momentum4bit', [2e-3, 0.5, { allow4bitWithoutParity: true }], 'SGD4bit'],
    ['radam', [2e-3], 'RAdam'],
    ['radam8bit', [2e-3], 'RAdam8bit'],
  ];
  for (const [factory, args, cls] of factories) {
    const opt = (tfjs[factory] as (...a: unknown[]) => { learningRate: number; getClassName(): string })(...args);
    assert.ok(opt instanceof (tfjs[cls] as new () => unknown), `${factory} builds a ${cls}`);
    assert.equal(opt.learningRate, 2e-3, `${factory}: learning rate`);
    // The saved name starts with 'bitopt.<Class>' (it may go on with a hint for loaders without bitopt).
    assert.match(opt.getClassName(), new RegExp(`^bitopt\\.${cls}\\b`), `${factory}: serialization name`);
  }
  // One 4-bit step through tfjs: Adam's first step moves each element by about lr.
  const v = tf.variable(tf.ones([4096]));
  const opt = (tfjs.adam4bit as (lr: number) => { applyGradients(g: Record<string, unknown>): void; dispose(): void })(1e-3);
  opt.applyGradients({ [v.name]: tf.ones([4096]) });
  const after = v.dataSync();
  assert.ok(after.every((x) => Math.abs(x - (1 - 1e-3)) < 1e-6), `adam4bit via tfjs: ${after[0]}`);
  opt.dispose();
  v.dispose();
});
