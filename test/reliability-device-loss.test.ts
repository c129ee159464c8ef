/**
 * Reliability: WebGPU device loss during training (SwiftShader). After device.destroy() the
 * next step / sync / state read rejects with a clear Error (no hang, no silent success); a
 * fresh device resumed from the last good checkpoint (parameters + checkpoint file) then
 * reproduces the uninterrupted run bit for bit: same kernels, same inputs, and the GPU step
 * is deterministic (block absmax by atomicMax is order-independent; LAMB's norm partials are
 * summed in a fixed order).
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as bitopt from '../src/index.js';
import type { StateDict } from '../src/index.js';
import { createGpuTensor, readGpuTensor, writeGpuTensor } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { createWebgpuOptimizer, type OptimizerClass } from '../src/kernels/webgpu/optimizer.js';
import { loadStateDictFile, saveStateDictFile } from '../src/node/index.js';
import { randn, rng } from './helpers/float64-rules.js';
import './helpers/swiftshader.js';

const probe = await requestNodeDevice().catch(() => null);
const skip = probe ? false : 'no WebGPU adapter (install chromium for SwiftShader, see docs/architecture.md §5)';
probe?.device.destroy();

const N = 9001;
const STEPS = 8;
const LOSS_AFTER = 5; // the device is lost after step 5; the last checkpoint is from step 4

/** Runs `steps` (1-based, inclusive range) on a fresh device; optionally starting from a checkpoint. */
async function train(cls: OptimizerClass<any>, options: object, from: { param: Float32Array; dict: StateDict | null }, first: number, last: number, grads: Float32Array[]) {
  const gpu = (await requestNodeDevice())!;
  const param = createGpuTensor(gpu.device, from.param);
  const grad = createGpuTensor(gpu.device, N);
  const opt = createWebgpuOptimizer(gpu.device, cls, [param], options);
  if (from.dict) opt.loadStateDict(from.dict);
  for (let t = first; t <= last; t++) {
    writeGpuTensor(gpu.device, grad, grads[t - 1]);
    await opt.step([grad]);
  }
  await opt.sync();
  return { gpu, param, grad, opt };
}

describe('reliability: WebGPU device loss', { skip }, () => {
  for (const [cls, options] of [[bitopt.Adam8bit, { lr: 1e-2, percentileClipping: 90 }], [bitopt.LAMB8bit, { lr: 1e-2, maxUnorm: 0.5 }], [bitopt.Lion, {}]] as [OptimizerClass<any>, object][]) {
    it(`${cls.name}: loss surfaces as a clear error; the last checkpoint on a fresh device reproduces the uninterrupted run bit for bit`, { timeout: 120_000 }, async (t) => {
      const rand = rng(21);
      const p0 = randn(N, rand);
      const grads = Array.from({ length: STEPS }, () => randn(N, rand));

      // Uninterrupted run.
      const ref = await train(cls, options, { param: p0, dict: null }, 1, STEPS, grads);
      const refParam = await readGpuTensor(ref.gpu.device, ref.param);
      const refDict = await ref.opt.stateDictAsync();
      ref.gpu.device.destroy();

      // Interrupted run: checkpoint after step LOSS_AFTER - 1, one more step, then the device is lost.
      const dir = await mkdtemp(join(tmpdir(), 'bitopt-loss-'));
      const run = await train(cls, options, { param: p0, dict: null }, 1, LOSS_AFTER - 1, grads);
      const ckParam = await readGpuTensor(run.gpu.device, run.param);
      await saveStateDictFile(join(dir, 'opt.ckpt'), await run.opt.stateDictAsync());
      writeGpuTensor(run.gpu.device, run.grad, grads[LOSS_AFTER - 1]);
      await run.opt.step([run.grad]);
      run.gpu.device.destroy();
      const lost = /device was lost|destroyed|WebGPU/i;
      await assert.rejects(
        (async () => {
          await run.opt.step([run.grad]);
          await run.opt.sync();
        })(),
        (e: unknown) => {
          if (e instanceof Error) t.diagnostic(`error after the loss: ${e.message}`);
          return e instanceof Error && lost.test(e.message) && e.message.includes(cls.name);
        },
        'the step after the loss rejects, naming the optimizer and the loss',
      );
      await assert.rejects(run.opt.sync(), lost, 'sync keeps reporting the loss');
      await assert.rejects(run.opt.stateDictAsync(), lost, 'reading the state from a lost device rejects (no hang, no garbage)');

      // Resume on a fresh device from the checkpoint: steps LOSS_AFTER..STEPS.
      const resumed = await train(cls, options, { param: ckParam, dict: await loadStateDictFile(join(dir, 'opt.ckpt')) }, LOSS_AFTER, STEPS, grads);
      const outParam = await readGpuTensor(resumed.gpu.device, resumed.param);
      const outDict = await resumed.opt.stateDictAsync();
      resumed.gpu.device.destroy();
      assert.deepEqual(outParam, refParam, 'parameters bit for bit');
      assert.deepEqual(outDict, refDict, 'optimizer state bit for bit');
    });
  }
});
