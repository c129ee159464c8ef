/**
 * Reliability on WebGPU (issue 13, invariants 1, 7 and 8; SwiftShader): a failed step is
 * reported once and taken back (its counts, the states it created), the optimizer stays usable
 * and equals a run that never saw the failed step bit for bit; errors of other code on the
 * device are not ours; look-alike tensors and reassigned `buffer`/`length` are refused before
 * anything changes; unawaited steps and a state read during pending steps are consistent; a
 * `loadStateDict` whose buffers the GPU rejects is undone whole; hostile `loadStateDict` and
 * `setOptions` calls change nothing (property); `releaseState` frees exactly one parameter's buffers.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import * as bitopt from '../src/index.js';
import { createGpuTensor, readGpuTensor, writeGpuTensor, type GpuTensor } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { createWebgpuOptimizer, type OptimizerClass } from '../src/kernels/webgpu/optimizer.js';
import { randn, rng } from './helpers/float64-rules.js';
import './helpers/swiftshader.js';

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

  test('a loadStateDict whose buffers WebGPU rejects is undone whole: reported once, state bit for bit as before, training continues', async () => {
    const opts = { lr: 1e-2, min8bitSize: 0, percentileClipping: 90 }; // 8-bit codes, absmax and a clipping buffer
    const ref = make(bitopt.Adam8bit, opts);
    const run = make(bitopt.Adam8bit, opts);
    const other = make(bitopt.Adam8bit, { ...opts, lr: 3e-2 });
    for (const k of [0, 1]) {
      await stepWith(ref, k);
      await stepWith(run, k);
      await stepWith(other, 5 - k);
    }
    await stepWith(other, 2);
    const foreign = await other.opt.stateDictAsync();
    const before = await snapshot(run);
    const create = device.createBuffer.bind(device);
    const failAt = (k: number, how: 'gpu' | 'throw') => {
      let calls = 0;
      device.createBuffer = (d: GPUBufferDescriptor) => {
        if (calls++ !== k) return create(d);
        if (how === 'throw') throw new Error('createBuffer refused (test)');
        return create({ ...d, size: device.limits.maxBufferSize + 4 }); // an invalid buffer and a validation error in the scope
      };
    };
    try {
      // A JS exception while creating: thrown at once, nothing changed.
      failAt(1, 'throw');
      assert.throws(() => run.opt.loadStateDict(foreign), /createBuffer refused/);
      device.createBuffer = create;
      assert.deepEqual(await snapshot(run), before, 'state bit for bit as before a load that threw');
      // An error only the GPU reports: the load is taken back when it arrives.
      for (const k of [0, 1, 2]) {
        failAt(k, 'gpu');
        run.opt.loadStateDict(foreign);
        device.createBuffer = create;
        writeGpuTensor(device, run.grad, GRADS[2]);
        await run.opt.step([run.grad]); // enqueued before the error is known: must run nothing
        await assert.rejects(run.opt.sync(), /Adam8bit\.loadStateDict: WebGPU validation error.*that loadStateDict was not applied/s, `buffer ${k}`);
        await run.opt.sync(); // reported once
        assert.deepEqual(await snapshot(run), before, `state bit for bit as before the failed load (buffer ${k} failed)`);
      }
    } finally {
      device.createBuffer = create;
    }
    for (const k of [2, 3]) {
      await stepWith(ref, k);
      await stepWith(run, k);
    }
    assert.deepEqual(await snapshot(run), await snapshot(ref), 'training continues as if the failed loads never happened');
    run.opt.loadStateDict(foreign); // a load that succeeds still works
    assert.deepEqual(await run.opt.stateDictAsync(), foreign);
    for (const o of [ref, run, other]) o.opt.destroy();
  });

  test("releaseState destroys exactly that parameter's GPU buffers; the others are as if it never existed", async () => {
    const opts = { lr: 1e-2, min8bitSize: 0 };
    const [p0, p1, g0, g1] = [createGpuTensor(device, P0), createGpuTensor(device, P0), createGpuTensor(device, N), createGpuTensor(device, N)];
    const solo = make(bitopt.Adam8bit, opts);
    const create = device.createBuffer.bind(device);
    const made: { buffer: GPUBuffer; destroyed: boolean }[] = [];
    device.createBuffer = (d: GPUBufferDescriptor) => {
      const buffer = create(d);
      const rec = { buffer, destroyed: false };
      const destroy = buffer.destroy.bind(buffer);
      buffer.destroy = () => ((rec.destroyed = true), destroy());
      made.push(rec);
      return buffer;
    };
    let opt;
    try {
      opt = createWebgpuOptimizer(device, bitopt.Adam8bit, [p0, p1], opts);
      writeGpuTensor(device, g0, GRADS[0]);
      writeGpuTensor(device, g1, GRADS[1]);
      await opt.step([g0, g1]);
    } finally {
      device.createBuffer = create;
    }
    await stepWith(solo, 1);
    const bytes8 = 2 * Math.ceil(N / 256) * (256 + 4); // S·ceil(n/blockSize)·(blockSize + 4)
    assert.equal(opt.stateBytes(0), bytes8);
    opt.releaseState(0);
    const destroyed = made.filter((m) => m.destroyed);
    assert.equal(destroyed.length, 2, 'codes and absmax buffers of parameter 0, nothing else');
    assert.equal(destroyed.reduce((a, m) => a + m.buffer.size, 0), bytes8);
    assert.deepEqual([opt.stateBytes(0), opt.stepCount(0), opt.stepCount(1)], [0, 0, 1]);
    for (const k of [2, 3]) {
      writeGpuTensor(device, g1, GRADS[k]);
      await opt.step([null, g1]);
      await stepWith(solo, k);
    }
    const dict = await opt.stateDictAsync();
    const ref = await snapshot(solo);
    assert.deepEqual(await readGpuTensor(device, p1), ref.param, 'the other parameter is bit-identical to a run without the released one');
    assert.deepEqual(dict.tensors[1], ref.dict.tensors[0], 'and so is its state');
    opt.destroy();
    solo.opt.destroy();
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

  test('property: hostile loadStateDict / setOptions calls change nothing; accepted ones round-trip; the run equals a clean one', { timeout: 120_000 }, async () => {
    const opts = { lr: 1e-2, min8bitSize: 0 };
    const clone = (d: bitopt.StateDict) => structuredClone(d);
    const t0 = (d: bitopt.StateDict) => d.tensors[0] as unknown as { length: number; step: number; states: Record<string, unknown>[] };
    const other = make(bitopt.Lion8bit, opts);
    await stepWith(other, 0);
    const lionDict = await other.opt.stateDictAsync();
    other.opt.destroy();
    type Dicts = { cur: bitopt.StateDict; old: bitopt.StateDict };
    // [name, the dict to load, accepted?]; the GPU-failing load is a valid dict whose buffer creation fails.
    const loads: [string, (d: Dicts) => unknown, boolean][] = [
      ['its own dict', (d) => d.cur, true],
      ['an earlier dict', (d) => d.old, true],
      ['Lion8bit dict', () => lionDict, false],
      ['null', () => null, false],
      ['absmax NaN', (d) => { const c = clone(d.cur); (t0(c).states[0].absmax as Float32Array)[0] = NaN; return c; }, false],
      ['codes short', (d) => { const c = clone(d.cur); t0(c).states[0].codes = (t0(c).states[0].codes as Uint8Array).slice(1); return c; }, false],
      ['another map', (d) => { const c = clone(d.cur); (t0(c).states[0].map as Float32Array)[5] *= 0.99; return c; }, false],
      ['length wrong', (d) => { const c = clone(d.cur); t0(c).length = N + 1; return c; }, false],
      ['step -1', (d) => { const c = clone(d.cur); t0(c).step = -1; return c; }, false],
      ['lr NaN', (d) => { const c = clone(d.cur); (c.groups[0].options as Record<string, unknown>).lr = NaN; return c; }, false],
      ['format wrong', (d) => ({ ...clone(d.cur), format: 'nope' }), false],
    ];
    const options: [string, unknown, unknown, boolean][] = [
      ['lr 2e-2', { lr: 2e-2 }, undefined, true],
      ['lr 1e-2 group 0', { lr: 1e-2 }, 0, true],
      ['lr NaN', { lr: NaN }, undefined, false],
      ['eps 0', { eps: 0 }, undefined, false],
      ['optimBits 32 once state exists', { optimBits: 32 }, undefined, false],
      ['unknown name', { lrr: 1 }, undefined, false],
      ["group '0'", { lr: 2e-2 }, '0', false],
      ['group 3', { lr: 2e-2 }, 3, false],
      ['a Map', new Map([['lr', 1]]), undefined, false],
    ];
    const counts = { steps: 0, loads: 0, options: 0, refused: 0, gpuFailed: 0 };
    const create = device.createBuffer.bind(device);
    // Each action: -1 a step, -2 a load that fails on the GPU, [0, L) a load, [L, L + O) a setOptions.
    const action = fc.integer({ min: -2, max: loads.length + options.length - 1 });
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 6 }), async (plan) => {
        const ref = make(bitopt.Adam8bit, opts);
        const run = make(bitopt.Adam8bit, opts);
        let k = 0;
        const both = async (f: (o: ReturnType<typeof make>) => unknown) => {
          await f(ref);
          await f(run);
        };
        // A call the plan expects refused must throw a plain Error (not a TypeError from inside)
        // and change nothing; one expected accepted must not throw. False: refused.
        const acceptedOrUnchanged = async (what: string, ok: boolean, before: unknown, call: () => void) => {
          try {
            call();
          } catch (e) {
            assert.ok(!ok && e instanceof Error && !(e instanceof TypeError), `${what}: ${String(e)}`);
            assert.deepEqual(await snapshot(run), before, `${what}: refused and unchanged`);
            counts.refused++;
            return false;
          }
          assert.ok(ok, `accepted: ${what}`);
          return true;
        };
        try {
          await both((o) => stepWith(o, 0));
          const dicts: Dicts = { cur: await run.opt.stateDictAsync(), old: await run.opt.stateDictAsync() };
          for (const a of plan) {
            dicts.cur = await run.opt.stateDictAsync();
            const before = await snapshot(run);
            if (a === -1) {
              k = (k + 1) % GRADS.length;
              await both((o) => stepWith(o, k));
              if (k % 2 === 0) dicts.old = await run.opt.stateDictAsync();
              counts.steps++;
            } else if (a === -2) {
              let calls = 0;
              device.createBuffer = (d: GPUBufferDescriptor) => (calls++ === 1 ? create({ ...d, size: device.limits.maxBufferSize + 4 }) : create(d));
              try {
                run.opt.loadStateDict(dicts.old);
              } finally {
                device.createBuffer = create;
              }
              await assert.rejects(run.opt.sync(), /that loadStateDict was not applied/);
              assert.deepEqual(await snapshot(run), before, 'a load the GPU rejected changed nothing');
              counts.gpuFailed++;
            } else if (a < loads.length) {
              const [what, dict, ok] = loads[a];
              const arg = dict(dicts) as bitopt.StateDict;
              if (!(await acceptedOrUnchanged(what, ok, before, () => run.opt.loadStateDict(arg)))) continue;
              ref.opt.loadStateDict(arg);
              assert.deepEqual(await run.opt.stateDictAsync(), arg, `${what}: stateDictAsync after loadStateDict returns the dict`);
              counts.loads++;
            } else {
              const [what, o, index, ok] = options[a - loads.length];
              if (!(await acceptedOrUnchanged(what, ok, before, () => run.opt.setOptions(o as object, index as number)))) continue;
              ref.opt.setOptions(o as object, index as number);
              assert.equal(run.opt.groupOptions(0).lr, (o as { lr: number }).lr);
              counts.options++;
            }
          }
          k = (k + 1) % GRADS.length;
          await both((o) => stepWith(o, k));
          const [a, b] = [await snapshot(ref), await snapshot(run)];
          assert.deepEqual(b.param, a.param, 'parameters = the run that saw only the accepted calls');
          assert.deepEqual(b.dict, a.dict);
        } finally {
          device.createBuffer = create;
          ref.opt.destroy();
          run.opt.destroy();
        }
      }),
      { numRuns: 12 * RUNS, seed: 1313 },
    );
    console.log(`# webgpu loadStateDict/setOptions property: ${counts.loads} loads and ${counts.options} setOptions accepted (round-trip), ${counts.refused} refused unchanged, ${counts.gpuFailed} loads failed on the GPU and undone, ${counts.steps} steps; run = clean run`);
  });
});
