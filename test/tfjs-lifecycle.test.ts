/**
 * The tfjs adapter's lifecycle as a careless user lives it (issue 13, "tfjs lifecycle"): a
 * disposed optimizer refuses work instead of restarting from fresh state, a new variable under
 * an old name does not inherit the old one's state, and a call with only null gradients is not
 * an iteration.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import fc from 'fast-check';
import * as bitopt from '../src/tfjs/index.js';
import { wasmKernelsSupported } from '../src/kernels/cpu/wasm-runtime.js';
import { settleKernelMemory } from './helpers/gc.js';


describe('tfjs adapter lifecycle', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  test('after dispose(), applyGradients, getWeights and setWeights throw instead of silently restarting', async () => {
    const v = tf.variable(tf.ones([5000]), true, 'life_dispose');
    const opt = bitopt.adam8bit(1e-2);
    opt.applyGradients({ life_dispose: tf.fill([5000], 0.5) });
    const saved = await opt.getWeights();
    opt.dispose();
    const before = v.dataSync().slice();
    assert.throws(() => opt.applyGradients({ life_dispose: tf.fill([5000], 0.5) }), /Adam8bit\.applyGradients: the optimizer was disposed/);
    await assert.rejects(opt.getWeights(), /getWeights: the optimizer was disposed/);
    await assert.rejects(opt.setWeights(saved), /setWeights: the optimizer was disposed/);
    assert.deepEqual(v.dataSync(), before, 'the variable did not move');
    v.dispose();
  });

  test('a new variable under a disposed variable\'s name is refused, not given the old state', () => {
    const opt = bitopt.adam8bit(1e-2);
    const a = tf.variable(tf.ones([5000]), true, 'life_reuse');
    opt.applyGradients({ life_reuse: tf.fill([5000], 0.5) });
    a.dispose();
    const b = tf.variable(tf.zeros([5000]), true, 'life_reuse');
    assert.throws(() => opt.applyGradients({ life_reuse: tf.fill([5000], 0.5) }), /'life_reuse' is a new variable under the name of one this optimizer has state for/);
    assert.ok(b.dataSync().every((x) => x === 0), 'the new variable did not move');
    b.dispose();
    opt.dispose();
  });

  test("a disposed variable's state leaves stateBytes() and getWeights(); the live one's stays", async () => {
    const opt = bitopt.adam8bit(1e-2);
    const a = tf.variable(tf.ones([5000]), true, 'life_bytes_a');
    const b = tf.variable(tf.ones([3000]), true, 'life_bytes_b');
    opt.applyGradients({ life_bytes_a: tf.fill([5000], 0.5), life_bytes_b: tf.fill([3000], 0.5) });
    // Adam8bit (docs/architecture.md): 2 states of n codes + 4 absmax bytes per 256-block; under min8bitSize (4096) 2 float32 states.
    const bytes8 = (n: number) => 2 * (n + 4 * Math.ceil(n / 256));
    assert.equal(opt.stateBytes(), bytes8(5000) + 2 * 4 * 3000);
    a.dispose();
    assert.equal(opt.stateBytes(), 2 * 4 * 3000);
    const names = (await opt.getWeights()).map((w) => w.name);
    assert.ok(names.some((n) => n.includes('life_bytes_b')) && !names.some((n) => n.includes('life_bytes_a')), names.join());
    b.dispose();
    opt.dispose();
  });

  test("a disposed variable's state is freed at the next applyGradients: kernel memory drops by exactly its bytes, the others are as if it never existed", { skip: !wasmKernelsSupported() && 'no WebAssembly kernel' }, async () => {
    // 8192 elements: Adam8bit's 2 states of 8192 codes + 32 absmax floats, every region a whole
    // number of the allocator's 64-byte lines, so the drop is the byte formula exactly.
    const n = 8192;
    const freedBytes = 2 * (n + 4 * Math.ceil(n / 256));
    const grad = (t: number, len: number) => tf.tensor1d(Float32Array.from({ length: len }, (_, i) => Math.sin(i * 0.37 + t) * 0.1));
    const train = async (withA: boolean, tag: string) => {
      const opt = bitopt.adam8bit(1e-2);
      const a = withA ? tf.variable(tf.ones([n]), true, `life_free_a_${tag}`) : null;
      const b = tf.variable(tf.fill([5000], 0.5), true, `life_free_b_${tag}`);
      const c = tf.variable(tf.fill([300], -0.5), true, `life_free_c_${tag}`);
      const gs = (t: number) => [grad(t, 5000), grad(t + 1, 300)];
      const [gb1, gc1] = gs(1);
      opt.applyGradients({ ...(a ? { [a.name]: grad(0, n) } : {}), [b.name]: gb1, [c.name]: gc1 });
      const held = await settleKernelMemory();
      a?.dispose();
      const [gb2, gc2] = gs(2);
      opt.applyGradients({ [b.name]: gb2, [c.name]: gc2 });
      const after = await settleKernelMemory();
      const [gb3, gc3] = gs(3);
      opt.applyGradients({ [b.name]: gb3, [c.name]: gc3 });
      const w = await opt.getWeights();
      const out = {
        drop: held - after,
        values: [b.dataSync().slice(), c.dataSync().slice()],
        steps: [opt.stepCount(b), opt.stepCount(c)],
        iterations: opt.iterations,
        bytes: opt.stateBytes(),
        weights: w.slice(1).filter((x) => !x.name.endsWith('/bitopt/header')).map((x) => x.tensor.dataSync().slice()),
      };
      tf.dispose([b, c, ...w.map((x) => x.tensor)]);
      opt.dispose();
      return out;
    };
    const without = await train(false, 'ref');
    const withA = await train(true, 'run');
    assert.equal(withA.drop, freedBytes, `kernel memory dropped by ${withA.drop} bytes, ${freedBytes} expected`);
    assert.equal(without.drop, 0, 'a step of the same variables allocates nothing more (else the drop above measures nothing)');
    assert.deepEqual(withA.values, without.values, 'the other variables are bit-identical to a run that never had the disposed one');
    assert.deepEqual(withA.weights, without.weights, "the other variables' states are bit-identical");
    assert.deepEqual(withA.steps, [3, 3]);
    assert.equal(withA.iterations, without.iterations);
    assert.equal(withA.bytes, without.bytes);
  });

  test('a disposed second gradient refuses the whole call: the first variable does not move, iterations unchanged', () => {
    const opt = bitopt.adam8bit(1e-2);
    const a = tf.variable(tf.ones([600]), true, 'life_half_a');
    const b = tf.variable(tf.ones([600]), true, 'life_half_b');
    opt.applyGradients({ life_half_a: tf.fill([600], 0.5), life_half_b: tf.fill([600], 0.5) });
    const [va, vb, iters, bytes] = [a.dataSync().slice(), b.dataSync().slice(), opt.iterations, opt.stateBytes()];
    const gb = tf.fill([600], 0.5);
    gb.dispose();
    assert.throws(() => opt.applyGradients({ life_half_a: tf.fill([600], 0.5), life_half_b: gb }), /disposed/);
    assert.deepEqual(a.dataSync(), va);
    assert.deepEqual(b.dataSync(), vb);
    assert.equal(opt.iterations, iters);
    assert.equal(opt.stepCount(a), 1);
    assert.equal(opt.stateBytes(), bytes);
    a.dispose();
    b.dispose();
    opt.dispose();
  });

  test('a call whose gradients are all null is not an iteration; one with a gradient is', async () => {
    const v = tf.variable(tf.ones([64]), true, 'life_null');
    const opt = bitopt.adam(1e-2);
    opt.applyGradients([{ name: 'life_null', tensor: null as unknown as tf.Tensor }]);
    assert.equal(opt.iterations, 0);
    opt.applyGradients({ life_null: tf.fill([64], 0.5) });
    assert.equal(opt.iterations, 1);
    v.dispose();
    opt.dispose();
  });

  test('property: hostile applyGradients calls throw and change nothing; accepted ones keep finite variables finite', () => {
    const RUNS = Number(process.env.RELIABILITY_RUNS ?? 1);
    const shapes: Record<string, number[]> = { prop_a: [300], prop_b: [50, 100], prop_c: [4] };
    const gradFor = (name: string, kind: number): unknown => {
      const shape = shapes[name];
      switch (kind) {
        case 0: return tf.fill(shape, 0.01);
        case 1: return null;
        case 2: { const g = tf.fill(shape, 0.01); g.dispose(); return g; }
        case 3: return tf.fill([7], 0.01);
        case 4: return tf.fill(shape, 1, 'int32');
        case 5: return 0.5;
        case 6: return new Float32Array(shape.reduce((a, b) => a * b));
        default: return tf.fill(shape, NaN);
      }
    };
    const counts = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(fc.array(fc.array(fc.tuple(fc.constantFrom('prop_a', 'prop_b', 'prop_c', 'prop_missing'), fc.nat(7)), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }), fc.boolean(), (calls, asArray) => {
        const vars = Object.entries(shapes).map(([n, s]) => tf.variable(tf.fill(s, 0.5), true, n));
        const opt = bitopt.adam8bit(1e-2);
        try {
          for (const call of calls) {
            const list = call.map(([n, k]) => ({ name: n, tensor: (n === 'prop_missing' ? tf.fill([3], 0.1) : gradFor(n, k)) as tf.Tensor }));
            const before = { v: vars.map((v) => v.dataSync().slice()), it: opt.iterations, bytes: opt.stateBytes(), steps: vars.map((v) => opt.stepCount(v)) };
            try {
              opt.applyGradients(asArray ? list : Object.fromEntries(list.map((x) => [x.name, x.tensor])));
              counts.accepted++;
              for (const v of vars) assert.ok(v.dataSync().every(Number.isFinite), 'a finite variable became non-finite');
            } catch (e) {
              assert.ok(e instanceof Error && !(e instanceof TypeError), String(e));
              assert.deepEqual({ v: vars.map((v) => v.dataSync().slice()), it: opt.iterations, bytes: opt.stateBytes(), steps: vars.map((v) => opt.stepCount(v)) }, before, (e as Error).message);
              counts.refused++;
            }
          }
        } finally {
          opt.dispose();
          for (const v of vars) v.dispose();
        }
      }),
      { numRuns: 60 * RUNS, seed: 1313 },
    );
    console.log(`# tfjs applyGradients property: ${counts.accepted} calls accepted (finite), ${counts.refused} refused unchanged`);
  });
});
