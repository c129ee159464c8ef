/**
 * `bitopt demo --task capacity --backend webgpu`: the wall is a budget on the GPU buffers alive
 * on the device (src/demo/capacity/gpu-budget.ts). The guard's counts are checked against
 * buffer sizes derived by hand; a search under a small budget on SwiftShader (CI has no GPU,
 * docs/architecture.md §5) shows tf.train.adam's next size up failing with the out-of-memory
 * error and bitopt's Adam8bit training ≥ 1.8× its parameters with a falling loss. SwiftShader
 * runs bitopt's step at about 2.5 s for 700k parameters on 2 cores, so the budget is 8 MiB and
 * the whole file takes about 2 minutes (2 min 10 s measured with other jobs on the machine). Skips the GPU parts only when no adapter exists.
 */
/// <reference types="@webgpu/types" />
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { capacityCommand } from '../src/demo/capacity/command.js';
import { guardGpuMemory, type GpuGuard } from '../src/demo/capacity/gpu-budget.js';
import { OutOfMemoryError } from '../src/demo/capacity/heap.js';
import { mlpConfig, mlpShapes, WIDTH_STEP } from '../src/demo/capacity/model.js';
import type { CapacityResults } from '../src/demo/capacity/run-capacity.js';
import { count } from '../src/demo/format.js';
import { tf } from '../src/demo/tf.js';
import { webgpuSkip } from './helpers/webgpu.js';

const skip = await webgpuSkip('capacity webgpu');

const MiB = 1024 * 1024;
const BUDGET = 8 * MiB;

/** Adam8bit's state per docs/architecture.md §1.4: tensors of ≥ 4096 elements 2 codes + 2 float32 absmax per 256-block, smaller ones two float32 states. */
function adam8bitStateBytes(width: number): number {
  return mlpShapes(mlpConfig(width)).reduce((a, [r, k]) => {
    const n = r * k;
    return a + (n >= 4096 ? 2 * n + 2 * 4 * Math.ceil(n / 256) : 8 * n);
  }, 0);
}

describe('capacity on webgpu: the GPU memory guard', { skip }, () => {
  // One guard per process (a second would wrap the first): budget 1 MiB, installed once.
  let guard: GpuGuard;
  const inUse = () => guard.stats().now.live - guard.stats().now.tfjsPool;
  before(() => {
    guard = guardGpuMemory(1 * MiB);
  });

  it("counts tfjs's tensor buffers at the device, keeps freed ones in the pool, and bitopt's buffers apart", async () => {
    const base = inUse();
    // 65536 float32 = 262144 bytes per tensor; both are computed on the GPU (above tfjs's CPU-forward threshold).
    const x = tf.fill([65536], 2);
    const y = tf.mul(x, x);
    assert.equal((await y.data())[7], 4);
    assert.equal(inUse() - base, 2 * 262144, 'x and y, each one buffer of 4 B per element');
    const live = guard.stats().now.live;
    x.dispose();
    y.dispose();
    const s = guard.stats();
    assert.equal(s.now.live, live, 'a freed tensor keeps its buffer: tfjs pools it');
    assert.equal(inUse(), base);
    assert.ok(s.now.tfjsPool >= 2 * 262144);
    // A buffer made outside tfjs's buffer manager is bitopt's (its adapter allocates on the same device).
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    const b = device.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE });
    assert.equal(guard.stats().now.bitopt, s.now.bitopt + 4096);
    b.destroy();
    b.destroy(); // counted once
    assert.equal(guard.stats().now.bitopt, s.now.bitopt);
    // Over the device's largest binding: refused before any allocation.
    assert.throws(() => device.createBuffer({ size: guard.stats().maxBindingBytes + 4, usage: GPUBufferUsage.STORAGE }), (e: unknown) => e instanceof OutOfMemoryError && e.memory === 'gpu-buffer-limit');
  });

  it('releases the pool before refusing, then refuses what the budget cannot hold', async () => {
    const flushes = guard.stats().poolFlushes;
    // 196608 float32 = 768 KiB: with ≥ 512 KiB in the pool it fits the 1 MiB budget only once the pool is released.
    // (Not read back: reading needs a staging buffer of the same size, which the budget would refuse.)
    const a = tf.fill([196608], 1);
    const s = guard.stats();
    assert.equal(s.poolFlushes, flushes + 1);
    assert.ok(s.now.live <= 1 * MiB && s.peakLiveBytes <= 1 * MiB);
    // A second 768 KiB tensor beside the first cannot fit, pool or not.
    assert.throws(
      () => tf.fill([196608], 3),
      (e: unknown) => e instanceof OutOfMemoryError && e.memory === 'gpu-budget' && /exceeds the budget of 1048576 bytes/.test(e.message),
    );
    assert.ok(guard.stats().now.live <= 1 * MiB);
    a.dispose();
  });
});

describe('capacity on webgpu: a search under an 8 MiB GPU budget', { skip }, () => {
  let c: CapacityResults;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bitopt-capacity-webgpu-'));
    ({ results: c } = await capacityCommand({
      optimizers: ['tf.train.adam', 'bitopt.adam8bit'],
      backend: 'webgpu',
      walls: ['gpu'],
      budgetBytes: BUDGET,
      steps: 8,
      probeSteps: 2,
      // Bisect only to within 50%: on SwiftShader a trial is ~9 s, most of it starting Dawn and compiling shaders.
      tolerance: 0.5,
      // The two searches at once: each trial is a process, and much of one is starting Dawn.
      jobs: 2,
      progress: false,
      command: 'test',
      log: () => {},
      out: dir,
    }));
  });

  it('tf.train.adam: the next size up fails with the out-of-memory error from the budget', () => {
    const s = c.searches.find((x) => x.optimizer === 'tf.train.adam')!;
    assert.ok(s.largest && s.firstFailing);
    assert.equal(s.largest.outcome, 'ok');
    assert.equal(s.firstFailing.outcome, 'oom');
    assert.equal(s.firstFailing.oomMemory, 'gpu-budget');
    assert.match(s.firstFailing.error!, /OutOfMemoryError: GPU out of memory: a \d+-byte tfjs buffer exceeds the budget of 8388608 bytes/);
    assert.ok(s.firstFailing.params > s.largest.params);
    assert.ok(s.firstFailing.params <= 1.5 * s.largest.params || s.firstFailing.job.width - s.largest.job.width === WIDTH_STEP);
    // Live GPU bytes never passed the budget, the pool included.
    for (const t of s.trials) assert.ok(t.memory!.gpu!.peakLiveBytes <= BUDGET);
    // tf.train.adam keeps nothing outside tfjs.
    assert.equal(s.largest.memory!.gpu!.peak.bitopt, 0);
  });

  it("bitopt Adam8bit trains ≥ 1.8× the parameters in the same budget, the loss falls, its GPU buffers hold its state", () => {
    const adam = c.searches.find((x) => x.optimizer === 'tf.train.adam')!.largest!;
    const s = c.searches.find((x) => x.optimizer === 'bitopt.adam8bit')!;
    const l = s.largest!;
    console.log(`# webgpu ${count(BUDGET)} B budget: tf.train.adam ${count(adam.params)}, Adam8bit ${count(l.params)} (${(l.params / adam.params).toFixed(2)}×); losses ${l.losses.map((x) => x.toFixed(3)).join(' ')}`);
    assert.ok(l.params >= 1.8 * adam.params, `${l.params} vs ${adam.params}`);
    assert.equal(s.firstFailing?.outcome, 'oom');
    assert.equal(s.firstFailing?.oomMemory, 'gpu-budget');
    assert.equal(l.losses.length, 8);
    const tail = l.losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
    assert.ok(tail < 0.85 * l.losses[0], `loss ${l.losses[0]} → ${tail}`);
    const g = l.memory!.gpu!;
    // The state is what docs/architecture.md gives, padded to whole GPU tiles; bitopt's buffers hold it and little more.
    const exact = adam8bitStateBytes(l.job.width);
    assert.ok(l.memory!.stateBytes >= exact && l.memory!.stateBytes <= exact + mlpShapes(mlpConfig(l.job.width)).length * 2 * 1024, `state ${l.memory!.stateBytes}, unpadded ${exact}`);
    assert.ok(g.peak.bitopt >= l.memory!.stateBytes && g.peak.bitopt < 1.2 * l.memory!.stateBytes + 64 * 1024, `bitopt's GPU buffers ${g.peak.bitopt}, state ${l.memory!.stateBytes}`);
    assert.ok(g.peakLiveBytes <= BUDGET);
    // tfjs's buffers in use hold at least the weights and gradients (4 + 4 B per parameter).
    assert.ok(l.memory!.tfjs.peakLiveBytes >= 8 * l.params);
    assert.ok(l.memory!.tfMemory!.numBytesInGPU! >= 4 * l.params, 'tf.memory() on webgpu: at least the weights stay in GPU buffers');
  });

  it('records the backend and the adapter, and the report says which wall each run had', () => {
    const saved = JSON.parse(readFileSync(join(dir, 'capacity-results.json'), 'utf8')) as CapacityResults;
    assert.equal(saved.backend, 'webgpu');
    assert.equal(saved.env.backend, 'webgpu');
    assert.ok(saved.env.gpu && saved.env.machine.includes(saved.env.gpu), saved.env.machine);
    assert.deepEqual(saved.searches.map((s) => s.wall), ['gpu', 'gpu']);
    const html = readFileSync(join(dir, 'index.html'), 'utf8');
    const section = html.slice(html.indexOf('<h2>A bigger model in the same memory, trained</h2>'));
    assert.ok(section.length > 100, 'the capacity section is in the report');
    assert.ok(section.includes(`tfjs-webgpu (${saved.env.gpu})`));
    assert.match(section, /wall per search: GPU buffers/);
    assert.match(section, /budget of <b>8\.00 MiB<\/b> on the GPU buffers alive on the device/);
    for (const s of c.searches) assert.ok(section.includes(`${count(s.largest!.params)} (width ${s.largest!.job.width})`));
    const curves = [...section.matchAll(/<path class="curve" data-series="([^"]*)" d="([^"]*)"/g)];
    for (const s of c.searches) {
      const path = curves.find((m) => m[1].startsWith(`${s.optimizer} [GPU buffers]`));
      assert.ok(path, `a curve for ${s.optimizer}`);
      assert.equal([...path[2].matchAll(/[ML][\d.-]+,([\d.-]+)/g)].length, 8);
    }
  });
});

describe('capacity on webgpu: the command line', () => {
  it('asks for --budget-mib (WebGPU reports no memory size) and refuses the wasm walls', async () => {
    const run = promisify(execFile);
    const cli = join(import.meta.dirname, '..', 'src', 'cli', 'index.ts');
    for (const [args, message] of [
      [[], /--task capacity --backend webgpu: needs --budget-mib N.*WebGPU does not report a device's memory size/],
      [['--budget-mib', '64', '--wall', 'tfjs'], /--wall: with --backend webgpu the wall is gpu/],
      [['--budget-mib', '64', '--tf-backend', 'wasm'], /leave --tf-backend out/],
    ] as const) {
      const r = await run(process.execPath, ['--import', 'tsx', cli, 'demo', '--task', 'capacity', '--backend', 'webgpu', ...args], { cwd: join(import.meta.dirname, '..') }).catch((e: { stderr: string; code: number }) => e);
      assert.equal((r as { code: number }).code, 1);
      assert.match((r as { stderr: string }).stderr, message);
    }
  });
});
