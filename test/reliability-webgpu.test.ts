/**
 * Reliability on WebGPU (issue 13, invariants 1, 7 and 8; SwiftShader): a failed step is
 * reported once and taken back (its counts, the states it created), the optimizer stays usable
 * and equals a run that never saw the failed step bit for bit; errors of other code on the
 * device are not ours; look-alike tensors and reassigned `buffer`/`length` are refused before
 * anything changes; unawaited steps and a state read during pending steps are consistent.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import * as bitopt from '../src/index.js';
import { createGpuTensor, readGpuTensor, writeGpuTensor, type GpuTensor } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { createWebgpuOptimizer, type OptimizerClass } from '../src/kernels/webgpu/optimizer.js';
import { randn, rng } from './helpers/float64-rules.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;
process.env.XDG_RUNTIME_DIR ??= '/tmp';

const gpu = await requestNodeDevice().catch(() => null);
const skip = gpu ? false : 'no WebGPU adapter (install chromium for SwiftShader, see docs/architecture.md §5)';
const device = gpu?.device as GPUDevice;
const RUNS = Number(process.env.RELIABILITY_RUNS ?? 1);
after(() => device?.destroy());

const N = 1500;
const rand = rng(1313);
const P0 = randn(N, rand);
const GRADS = Array.from({ length: 6 }, () => randn(N, rand));

/** A parameter and gradient on the device, and an optimizer over the parameter. */
function make(cls: OptimizerClass<any> = bitopt.Adam8bit, options: object = { lr: 1e-2 }) {
  const param = createGpuTensor(device, P0);
  const grad = createGpuTensor(device, N);
  return { param, grad, opt: createWebgpuOptimizer(device, cls, [param], options) };
}

/** Writes gradient k and steps. */
async function stepWith(o: ReturnType<typeof make>, k: number): Promise<void> {
  writeGpuTensor(device, o.grad, GRADS[k]);
  await o.opt.step([o.grad]);
}

/** A gradient tensor whose buffer is destroyed: the step fails at submit (a validation error). */
function destroyedGrad(): GpuTensor {
  const g = createGpuTensor(device, N);
  g.buffer.destroy();
  return g;
}

async function snapshot(o: ReturnType<typeof make>) {
  return { param: await readGpuTensor(device, o.param), dict: await o.opt.stateDictAsync() };
}

describe('reliability: WebGPU failed steps, foreign errors, look-alikes, concurrency', { skip }, () => {
  test('a failed step is reported once by sync(), taken back, and training continues as if it never happened', async () => {
    const ref = make();
    const run = make();
    for (const k of [0, 1]) {
      await stepWith(ref, k);
      await stepWith(run, k);
    }
    await run.opt.step([destroyedGrad()]); // enqueued; WebGPU reports the error later
    await assert.rejects(run.opt.sync(), /Adam8bit\.step: WebGPU validation error.*not applied/s);
    assert.equal(run.opt.stepCount(0), 2, 'the failed step is not counted');
    await run.opt.sync(); // reported once
    for (const k of [2, 3]) {
      await stepWith(ref, k);
      await stepWith(run, k);
    }
    const [a, b] = [await snapshot(ref), await snapshot(run)];
    assert.deepEqual(b.param, a.param, 'parameters bit-identical to the run without the failed step');
    assert.deepEqual(b.dict, a.dict, 'state dict identical');
    ref.opt.destroy();
    run.opt.destroy();
  });

  test('the next step() reports the failure once (running nothing); stateDictAsync and loadStateDict work after it', async () => {
    const run = make(bitopt.Lion8bit, {});
    await stepWith(run, 0);
    await run.opt.sync();
    const good = await snapshot(run);
    await run.opt.step([destroyedGrad()]);
    await new Promise((r) => setTimeout(r, 20)); // let the error scope settle
    writeGpuTensor(device, run.grad, GRADS[1]);
    await assert.rejects(run.opt.step([run.grad]), /Lion8bit\.step: WebGPU validation error.*not applied/s);
    assert.deepEqual(await snapshot(run), good, 'the failed step and the refused one changed nothing');
    run.opt.loadStateDict(good.dict);
    await stepWith(run, 1);
    assert.equal(run.opt.stepCount(0), 2);
    const dict = await run.opt.stateDictAsync();
    assert.equal(dict.tensors[0].step, 2);
    run.opt.destroy();
  });

  test('a failure on the first step leaves no state behind (stateBytes 0, no tensor state in the dict)', async () => {
    const run = make();
    await run.opt.step([destroyedGrad()]);
    await assert.rejects(run.opt.sync(), /validation error/);
    assert.equal(run.opt.stateBytes(), 0);
    assert.deepEqual((await run.opt.stateDictAsync()).tensors[0].states, []);
    const ref = make();
    await stepWith(ref, 0);
    await stepWith(run, 0);
    assert.deepEqual(await snapshot(run), await snapshot(ref));
    ref.opt.destroy();
    run.opt.destroy();
  });

  test("another user's validation error on the same device does not fail our step or sync", async () => {
    const run = make();
    await stepWith(run, 0);
    device.createBuffer({ size: 4, usage: 0 }); // invalid: an uncaptured validation error, not ours
    await new Promise((r) => setTimeout(r, 20));
    await stepWith(run, 1);
    await run.opt.sync();
    assert.equal(run.opt.stepCount(0), 2);
    run.opt.destroy();
  });

  test('look-alike GPU tensors are refused before anything changes', async () => {
    const run = make();
    await stepWith(run, 0);
    const before = await snapshot(run);
    const fake = { buffer: { size: 1 << 20, usage: GPUBufferUsage.STORAGE }, length: N } as unknown as GpuTensor;
    await assert.rejects(run.opt.step([fake]), /gradient 0 must be a GPU tensor/);
    assert.throws(() => createWebgpuOptimizer(device, bitopt.Adam8bit, [fake]), /createWebgpuOptimizer: params must be GPU tensors/);
    assert.throws(() => run.opt.addParam(fake), /must be a GPU tensor/);
    await run.opt.sync();
    assert.deepEqual(await snapshot(run), before);
    run.opt.destroy();
  });

  test('reassigning a parameter tensor’s buffer or length after it joined is refused; restoring them makes it usable', async () => {
    for (const field of ['buffer', 'length'] as const) {
      const run = make();
      await stepWith(run, 0);
      const before = await snapshot(run);
      const orig = run.param[field];
      if (field === 'buffer') run.param.buffer = createGpuTensor(device, N).buffer;
      else run.param.length = N - 4;
      writeGpuTensor(device, run.grad, GRADS[1]);
      await assert.rejects(run.opt.step([run.grad]), new RegExp(`parameter 0's ${field} was reassigned`));
      (run.param as unknown as Record<string, unknown>)[field] = orig;
      assert.deepEqual(await snapshot(run), before);
      await stepWith(run, 1);
      assert.equal(run.opt.stepCount(0), 2);
      run.opt.destroy();
    }
  });

  test('a step over two parameters sharing one GPU buffer is refused and changes nothing; each alone steps', async () => {
    const a = createGpuTensor(device, P0);
    const b = { buffer: a.buffer, length: N };
    const g = createGpuTensor(device, GRADS[0]);
    const opt = createWebgpuOptimizer(device, bitopt.Adam8bit, [a, b]);
    await assert.rejects(opt.step([g, g]), /parameters 0 and 1 share one GPU buffer/);
    assert.deepEqual(await readGpuTensor(device, a), P0);
    assert.equal(opt.stepCount(0) + opt.stepCount(1) + opt.stateBytes(), 0);
    await opt.step([g, null]);
    await opt.sync();
    assert.equal(opt.stepCount(0), 1);
    opt.destroy();
  });

  test('unawaited LAMB8bit steps equal awaited ones; a state read issued between steps is that moment’s', async () => {
    const seq = make(bitopt.LAMB8bit, { lr: 1e-2 });
    const par = make(bitopt.LAMB8bit, { lr: 1e-2 });
    const grads = GRADS.slice(0, 3).map((g) => createGpuTensor(device, g));
    for (const g of grads) await seq.opt.step([g]);
    const mid = await seq.opt.stateDictAsync();
    await seq.opt.step([grads[0]]);
    const p1 = par.opt.step([grads[0]]);
    const p2 = par.opt.step([grads[1]]);
    const p3 = par.opt.step([grads[2]]);
    const read = par.opt.stateDictAsync(); // copies submitted after the three steps, before the next
    await par.opt.step([grads[0]]);
    await Promise.all([p1, p2, p3]);
    const dict = await read;
    // The read waits for sync(), so it may see the fourth step too: its counts and states must be one moment's.
    const steps = dict.tensors[0].step;
    assert.ok(steps === 3 || steps === 4, `step ${steps}`);
    if (steps === 3) assert.deepEqual(dict, mid);
    assert.deepEqual(await snapshot(par), await snapshot(seq));
    seq.opt.destroy();
    par.opt.destroy();
  });

  test('property: hostile step arguments reject and change nothing; valid ones equal a clean run', { timeout: 120_000 }, async () => {
    const hostile: [string, () => unknown][] = [
      ['null list', () => null],
      ['number', () => 3],
      ['empty list', () => []],
      ['two gradients', () => [createGpuTensor(device, N), createGpuTensor(device, N)]],
      ['short gradient', () => [createGpuTensor(device, N - 1)]],
      ['look-alike', () => [{ buffer: {}, length: N }]],
      ['Float32Array', () => [new Float32Array(N)]],
      ['length NaN', () => [{ buffer: createGpuTensor(device, N).buffer, length: NaN }]],
      ['small buffer', () => [{ buffer: createGpuTensor(device, 8).buffer, length: N }]],
    ];
    const ref = make();
    const run = make();
    let refused = 0;
    let stepped = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: hostile.length - 1 })), { minLength: 1, maxLength: 4 }), async (plan) => {
        for (const h of plan) {
          if (h < 0) {
            const k = (stepped + refused) % GRADS.length;
            await stepWith(ref, k);
            await stepWith(run, k);
            stepped++;
            continue;
          }
          const before = run.opt.stepCount(0);
          await assert.rejects(run.opt.step(hostile[h][1]() as GpuTensor[]), Error, hostile[h][0]);
          assert.equal(run.opt.stepCount(0), before, hostile[h][0]);
          refused++;
        }
        const [a, b] = [await snapshot(ref), await snapshot(run)];
        assert.deepEqual(b.param, a.param);
        assert.deepEqual(b.dict, a.dict);
      }),
      { numRuns: 12 * RUNS, seed: 1313 },
    );
    console.log(`# webgpu step property: ${stepped} steps = clean run, ${refused} hostile calls refused unchanged`);
    ref.opt.destroy();
    run.opt.destroy();
  });
});
