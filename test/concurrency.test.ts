/**
 * Steps that are not awaited (issue 13, "Concurrency"): they run one at a time in call order,
 * and calls that would see a step half done are refused until it finishes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAMB8bit, LARS, type Optimizer } from '../src/index.js';

type Make = (p: Float32Array[]) => Optimizer;
const grads = (t: number) => [Float32Array.from({ length: 300_000 }, (_, i) => Math.sin(i + t)), Float32Array.from({ length: 5000 }, (_, i) => Math.cos(i * t))];
const params = () => [Float32Array.from({ length: 300_000 }, (_, i) => Math.cos(i)), Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i))];

describe('unawaited steps', () => {
  for (const [name, make] of [['LAMB8bit', (p) => new LAMB8bit(p, { lr: 1e-2 })], ['LARS', (p) => new LARS(p, { lr: 1e-2 })]] as [string, Make][]) {
    it(`${name}: three steps started without awaiting equal three awaited steps, bit for bit`, async () => {
      const a = params();
      const sequential = make(a);
      for (let t = 1; t <= 3; t++) await sequential.step(grads(t));
      const b = params();
      const concurrent = make(b);
      await Promise.all([1, 2, 3].map((t) => concurrent.step(grads(t))));
      for (let k = 0; k < 2; k++) assert.deepEqual(b[k], a[k], `${name} parameter ${k}`);
      assert.deepEqual(concurrent.stateDict(), sequential.stateDict());
    });
  }

  it('stateDict, loadStateDict, stepSync and option changes during a pending step are refused and change nothing', async () => {
    const p = params();
    const opt = new LAMB8bit(p, { lr: 1e-2 });
    await opt.step(grads(1));
    const dict = opt.stateDict();
    const pending = opt.step(grads(2));
    assert.throws(() => opt.stateDict(), /LAMB8bit\.stateDict: a step is still running; await opt\.step\(\.\.\.\) before calling stateDict/);
    assert.throws(() => opt.loadStateDict(dict), /loadStateDict: a step is still running/);
    assert.throws(() => opt.stepSync(grads(3)), /stepSync: a step is still running/);
    assert.throws(() => opt.setOptions({ lr: 1e-3 }), /setOptions: a step is still running/);
    await pending;
    assert.equal(opt.stepCount(0), 2);
    assert.equal(opt.groupOptions(0).lr, 1e-2);
    opt.loadStateDict(dict); // idle again
    assert.equal(opt.stepCount(0), 1);
  });

  it('a step that throws does not block the next one', async () => {
    const opt = new LAMB8bit(params(), { lr: 1e-2 });
    await assert.rejects(opt.step([new Float32Array(3)] as Float32Array[]), /got 1 gradients for 2 parameters/);
    await opt.step(grads(1));
    assert.equal(opt.stepCount(0), 1);
  });
});
