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
import * as bitopt from '../src/tfjs/index.js';

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
});
