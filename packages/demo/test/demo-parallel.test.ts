/**
 * `bitopt demo --jobs N` trains in child processes: the runs must come back in plan order with
 * exactly the numbers one process gives (each run is seeded on its own).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runDemo, type DemoOptions } from '../src/demo/run-demo.js';

const options = (jobs: number): DemoOptions => ({
  tasks: ['mnist'],
  families: ['adam'],
  seeds: [1, 2],
  steps: 8,
  out: '',
  tfBackend: 'wasm',
  tfjsBaseline: false,
  bits: [8],
  command: 'test',
  log: () => {},
  progress: false,
  jobs,
});

describe('demo: runs in parallel processes', () => {
  it('gives the same runs, in the same order, as one process', async () => {
    const serial = await runDemo(options(1));
    const parallel = await runDemo(options(3));
    assert.equal(parallel.runs.length, 4);
    assert.deepEqual(
      parallel.runs.map((r) => `${r.spec.id}/${r.seed}`),
      serial.runs.map((r) => `${r.spec.id}/${r.seed}`),
    );
    parallel.runs.forEach((r, i) => {
      assert.deepEqual(r.trainLoss, serial.runs[i].trainLoss, `${r.spec.id} seed ${r.seed}: train losses`);
      assert.deepEqual(r.evals, serial.runs[i].evals, `${r.spec.id} seed ${r.seed}: evaluations`);
      assert.equal(r.stateBytes, serial.runs[i].stateBytes);
    });
    // 8-bit and 32-bit differ (the comparison is not of a run with itself).
    assert.notDeepEqual(serial.runs[0].trainLoss, serial.runs[1].trainLoss);
  });
});
