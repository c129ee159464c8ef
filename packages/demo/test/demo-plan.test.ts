import assert from 'node:assert/strict';
import { it } from 'node:test';
import { planRuns } from '../src/demo/run-demo.js';
import type { Task } from '../src/demo/tasks.js';

// Stand-ins with the fields planning reads (the real tasks load their data sets).
const lr = { adam: 1e-3, adamw: 1e-3, sgd: 1e-2, rmsprop: 1e-3, adagrad: 1e-2, lion: 1e-4, lamb: 1e-3, lars: 0.1, ademamix: 1e-3, radam: 1e-3 };
const mnist = { id: 'mnist', defaultSteps: 600, msPerStep: 25, lr } as unknown as Task;
const lm = { id: 'lm', defaultSteps: 400, msPerStep: 250, lr } as unknown as Task;
const ids = (plan: ReturnType<typeof planRuns>) => plan.map((p) => `${p.taskId}:${p.spec.id}`);

it('trains the tfjs baseline only on the tasks listed (the default: MNIST), on all with true, on none with false', () => {
  const base = { families: ['adam' as const], seeds: [1], bits: [8 as const] };
  const listed = planRuns([mnist, lm], { ...base, tfjsBaseline: ['mnist'] }, 'core', base.bits, 1);
  assert.deepEqual(ids(listed), ['mnist:tfjs-adam', 'mnist:Adam', 'mnist:Adam8bit', 'lm:Adam', 'lm:Adam8bit']);
  const all = planRuns([mnist, lm], { ...base, tfjsBaseline: true }, 'core', base.bits, 1);
  assert.equal(ids(all).filter((s) => s.endsWith(':tfjs-adam')).length, 2);
  const none = planRuns([mnist, lm], { ...base, tfjsBaseline: false }, 'core', base.bits, 1);
  assert.deepEqual(ids(none), ['mnist:Adam', 'mnist:Adam8bit', 'lm:Adam', 'lm:Adam8bit']);
});

it('with several processes starts the costliest runs first (400 × 250 ms before 600 × 25 ms), keeping the order within a task', () => {
  const o = { families: ['adam' as const], seeds: [1, 2], tfjsBaseline: ['mnist'] as const };
  const parallel = planRuns([mnist, lm], o, 'core', [8], 2);
  assert.deepEqual(ids(parallel), [
    'lm:Adam', 'lm:Adam8bit', 'lm:Adam', 'lm:Adam8bit',
    'mnist:tfjs-adam', 'mnist:Adam', 'mnist:Adam8bit', 'mnist:tfjs-adam', 'mnist:Adam', 'mnist:Adam8bit',
  ]);
  assert.deepEqual(parallel.map((p) => p.seed), [1, 1, 2, 2, 1, 1, 1, 2, 2, 2]);
  // Indices follow the start order: the pool stores each result at its job's index.
  assert.deepEqual(parallel.map((p) => p.index), parallel.map((_, i) => i));
  // One process: the tasks in the order asked.
  assert.equal(planRuns([mnist, lm], o, 'core', [8], 1)[0].taskId, 'mnist');
  // --steps 5000 for both: MNIST (5000 × 25) still costs less than the LM (5000 × 250).
  assert.equal(planRuns([mnist, lm], { ...o, steps: 5000 }, 'core', [8], 2)[0].taskId, 'lm');
});
