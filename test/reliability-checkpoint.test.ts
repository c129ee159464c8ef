/**
 * Reliability: hostile checkpoints (beyond test/checkpoint.test.ts, which covers truncation,
 * bit flips, bad magic, wrong version, oversized counts and the atomic file save):
 *   - structural damage with a VALID checksum: fuzzed header JSON and fuzzed state-dict fields
 *     (wrong optimizer, wrong shapes, non-finite/negative absmax, NaN states, bad block sizes,
 *     wrong signs, …): either rejected with an Error naming the problem, with the optimizer's
 *     state untouched, or (a harmless edit such as another valid code) accepted and stepping
 *     to finite parameters;
 *   - a save killed at random moments (SIGKILL of a process saving in a loop) never leaves a
 *     file that fails to load or loads as anything but one of the saved checkpoints;
 *   - checkpoints move between the CPU and WebGPU engines through the byte format and training
 *     continues as if uninterrupted.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as bitopt from '../src/index.js';
import type { Optimizer, StateDict } from '../src/index.js';
import { crc32 } from '../src/io/crc32.js';
import { createGpuTensor, readGpuTensor, writeGpuTensor } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { createWebgpuOptimizer } from '../src/kernels/webgpu/optimizer.js';
import { loadStateDictFile } from '../src/node/index.js';
import { randn, rng } from './helpers/float64-rules.js';
import './helpers/swiftshader.js';

const SIZES = [5000, 100]; // one 8-bit tensor (partial last block), one small float32 tensor
/** RELIABILITY_RUNS=k multiplies the number of fuzzed inputs (CI: 1). */
const RUNS = Math.max(1, Number(process.env.RELIABILITY_RUNS ?? 1));

async function trained(cls: new (p: Float32Array[], o?: object) => Optimizer<any>, seed: number, options: object = {}) {
  const rand = rng(seed);
  const ps = SIZES.map((n) => randn(n, rand));
  const opt = new cls(ps, { percentileClipping: 90, ...options });
  for (let t = 0; t < 3; t++) await opt.step(ps.map((p) => randn(p.length, rand)));
  return { opt, ps, dict: opt.stateDict() };
}

function reseal(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

/** A deep copy of a state dict (typed arrays copied). */
function clone(d: StateDict): StateDict {
  return bitopt.deserializeStateDict(bitopt.serializeStateDict(d));
}

/** A plain Error (not a TypeError from reading garbage) naming who rejected it: the decoder, the loader or the optimizer class. */
const isClear = (e: unknown) => e instanceof Error && e.constructor === Error && /^(deserializeStateDict|loadStateDict|[A-Z]\w+)/.test(e.message) && e.message.length < 500;

/**
 * Loads `dict` into a trained optimizer: a rejection must be a clear Error and leave the
 * optimizer exactly as it was; an acceptance must step to finite parameters.
 */
async function loadOrReject(opt: Optimizer<any>, ps: Float32Array[], dict: StateDict, what: string): Promise<'rejected' | 'accepted'> {
  const before = opt.stateDict();
  try {
    opt.loadStateDict(dict);
  } catch (e) {
    assert.ok(isClear(e), `${what}: unclear error ${String(e)}`);
    assert.deepEqual(opt.stateDict(), before, `${what}: a rejected checkpoint changed the optimizer`);
    return 'rejected';
  }
  const saved = ps.map((p) => p.slice());
  await opt.step(ps.map((p) => p.map((_, i) => Math.sin(i))));
  assert.ok(ps.every((p) => p.every(Number.isFinite)), `${what}: accepted, then a step produced a non-finite parameter`);
  ps.forEach((p, i) => p.set(saved[i]));
  opt.loadStateDict(before);
  return 'accepted';
}

/** Hostile values for state-dict fields. */
const hostile = fc.constantFrom<unknown>(NaN, Infinity, -Infinity, -1, 0, 1e40, 2 ** 53, 0.5, 'x', null, undefined, [], {}, true, 255, 256, 3);

describe('reliability: hostile checkpoints', () => {
  it('fuzzed state-dict fields: rejected clearly with no state change, or harmless', async (t) => {
    const { opt, ps, dict } = await trained(bitopt.AdamW8bit, 1);
    const counts = { rejected: 0, accepted: 0 };
    // Every leaf path of the dict (array elements sampled), each replaced by a hostile value.
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]) => {
      paths.push(path);
      if (ArrayBuffer.isView(v)) {
        const n = (v as Uint8Array).length;
        for (const i of [0, 1, n >> 1, n - 1]) if (i >= 0 && i < n) paths.push([...path, i]);
      } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    };
    walk(dict, []);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths.filter((p) => p.length > 0)), hostile, async (path, value) => {
        const d = clone(dict) as unknown as Record<string | number, unknown>;
        let o = d;
        for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
        o[path[path.length - 1]] = value;
        counts[await loadOrReject(opt, ps, d as unknown as StateDict, `${path.join('.')} = ${String(value)}`)]++;
      }),
      { numRuns: 400 * RUNS, includeErrorInReport: true },
    );
    t.diagnostic(`inputs tried: ${counts.rejected + counts.accepted} (${paths.length} paths): ${counts.rejected} rejected, ${counts.accepted} accepted harmlessly`);
    assert.ok(counts.rejected > counts.accepted);
  });

  it('named cases: each rejected with an error naming the problem, nothing changed', async () => {
    const { opt, ps, dict } = await trained(bitopt.AdamW8bit, 2);
    const lion = (await trained(bitopt.Lion8bit, 3)).dict;
    const adam = (await trained(bitopt.Adam8bit, 3)).dict;
    const other = new bitopt.AdamW8bit([new Float32Array(5001), new Float32Array(100)]);
    const edit = (f: (d: any) => void) => {
      const d = clone(dict);
      f(d);
      return d;
    };
    const cases: [string, StateDict, RegExp][] = [
      ['another optimizer (Lion8bit)', lion, /state dict is from Lion8bit \(rule 'lion'\), this optimizer is AdamW8bit/],
      ['same rule, another class (Adam8bit)', adam, /state dict is from Adam8bit/],
      ['one tensor missing', edit((d) => d.tensors.pop()), /state dict has 1 tensors, this optimizer has 2 parameters/],
      ['wrong length', edit((d) => (d.tensors[0].length = 5001)), /tensor 0: state is for 5001 elements but the parameter has 5000/],
      ['codes too short', edit((d) => (d.tensors[0].states[0].codes = d.tensors[0].states[0].codes.slice(1))), /tensor 0\.states\[0\]\.codes: expected 5000 values, got 4999/],
      ['absmax NaN', edit((d) => (d.tensors[0].states[1].absmax[2] = NaN)), /tensor 0\.states\[1\]\.absmax: value 2 is NaN/],
      ['absmax +Infinity', edit((d) => (d.tensors[0].states[0].absmax[0] = Infinity)), /absmax: value 0 is Infinity/],
      ['absmax negative', edit((d) => (d.tensors[0].states[0].absmax[1] = -1)), /absmax: value 1 is -1/],
      ['float32 state NaN', edit((d) => (d.tensors[1].states[0].values[5] = NaN)), /tensor 1\.states\[0\]\.values: value 5 is NaN/],
      ['signed float32 state Infinity', edit((d) => (d.tensors[1].states[0].values[5] = Infinity)), /tensor 1\.states\[0\]\.values: value 5 is Infinity/],
      ['unsigned float32 state negative', edit((d) => (d.tensors[1].states[1].values[4] = -1)), /tensor 1\.states\[1\]\.values: value 4 is -1/],
      ['unsigned float32 state -Infinity', edit((d) => (d.tensors[1].states[1].values[5] = -Infinity)), /tensor 1\.states\[1\]\.values: value 5 is -Infinity/],
      ['block size not a power of two', edit((d) => (d.tensors[0].states[0].blockSize = 100)), /tensor 0\.states\[0\]: .*block/i],
      ['wrong sign', edit((d) => (d.tensors[0].states[1].sign = 'signed')), /sign must be 'unsigned'/],
      ['negative step', edit((d) => (d.tensors[0].step = -1)), /step must be a non-negative integer/],
      ['clip history count NaN', edit((d) => (d.tensors[0].clipHistory.count = NaN)), /clipHistory\.count/],
    ];
    for (const [what, d, re] of cases) {
      const before = opt.stateDict();
      assert.throws(() => opt.loadStateDict(d), re, what);
      assert.deepEqual(opt.stateDict(), before, `${what}: state changed`);
    }
    assert.throws(() => other.loadStateDict(dict), /tensor 0: state is for 5000 elements but the parameter has 5001/);
    void ps;
  });

  it('fuzzed header bytes with a valid checksum: a clear error or a dict that loads or is rejected clearly', async (t) => {
    const { opt, ps, dict } = await trained(bitopt.Adam8bit, 4);
    const bytes = bitopt.serializeStateDict(dict);
    const headerLength = new DataView(bytes.buffer).getUint32(12, true);
    const counts = { decodeRejected: 0, loadRejected: 0, accepted: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 8, max: 16 + headerLength - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), async (edits) => {
        const b = bytes.slice();
        for (const [i, v] of edits) b[i] = v;
        let d: StateDict;
        try {
          d = bitopt.deserializeStateDict(reseal(b));
        } catch (e) {
          assert.ok(isClear(e), `unclear decode error ${String(e)}`);
          counts.decodeRejected++;
          return;
        }
        const r = await loadOrReject(opt, ps, d, `header edits ${JSON.stringify(edits)}`);
        counts[r === 'rejected' ? 'loadRejected' : 'accepted']++;
      }),
      { numRuns: 400 * RUNS, includeErrorInReport: true },
    );
    t.diagnostic(`inputs tried: ${400 * RUNS}: ${counts.decodeRejected} rejected by deserializeStateDict, ${counts.loadRejected} by loadStateDict, ${counts.accepted} accepted harmlessly`);
  });

  it('a save killed at random moments never leaves a file that fails to load', { timeout: 120_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'bitopt-kill-'));
    const path = join(dir, 'opt.ckpt');
    // A child saves two large checkpoints alternately, forever; it is SIGKILLed mid-way.
    const child = /* ts */ `
      import { saveStateDictFile } from ${JSON.stringify(new URL('../src/node/index.ts', import.meta.url).pathname)};
      import { Adam8bit } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).pathname)};
      const dicts = [];
      for (const v of [1, 2]) {
        const p = new Float32Array(2_000_000).fill(v);
        const o = new Adam8bit([p]);
        await o.step([new Float32Array(p.length).fill(v)]);
        const d = o.stateDict();
        d.groups[0].options.lr = v * 1e-3;
        dicts.push(d);
      }
      for (let i = 0; ; i++) { await saveStateDictFile(${JSON.stringify(path)}, dicts[i & 1]); process.stdout.write('s'); }
    `;
    const script = join(dir, 'saver.mts');
    await writeFile(script, child);
    const rand = rng(5);
    let kills = 0;
    let loaded = 0;
    for (let round = 0; round < 6; round++) {
      const proc = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      // Wait for the first completed save after the first round, then kill at a random moment.
      await new Promise<void>((resolve) => proc.stdout.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 5 + rand() * 200));
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      kills++;
      const d = await loadStateDictFile(path); // must not throw
      assert.ok([1e-3, 2e-3].includes(d.groups[0].options.lr as number), 'one of the two saved checkpoints');
      loaded++;
    }
    const leftovers = (await readdir(dir)).filter((f) => f.endsWith('.tmp'));
    t.diagnostic(`inputs tried: ${kills} kills mid-save loop, ${loaded} loads valid; ${leftovers.length} orphaned temporary files (never loaded)`);
  });
});

const gpu = await requestNodeDevice().catch(() => null);
describe('reliability: checkpoints across the CPU and WebGPU engines', { skip: gpu ? false : 'no WebGPU adapter' }, () => {
  it('GPU -> bytes -> CPU and CPU -> bytes -> GPU: training continues as if uninterrupted', async () => {
    const device = gpu!.device;
    const rand = rng(11);
    const n = 5003;
    const p0 = randn(n, rand);
    const grads = Array.from({ length: 6 }, () => randn(n, rand));
    const opts = { lr: 1e-2, percentileClipping: 80 };
    // Uninterrupted CPU reference run (reference kernel) for 6 steps.
    const ref = p0.slice();
    const cpuRef = new bitopt.Adam8bit([ref], opts);
    cpuRef.setKernel(bitopt.createReferenceKernel());
    const refAfter: Float32Array[] = [];
    for (const g of grads) {
      await cpuRef.step([g]);
      refAfter.push(ref.slice());
    }
    // Steps 1-2 on the GPU, checkpoint to bytes, steps 3-4 on the CPU, bytes, steps 5-6 on the GPU.
    const param = createGpuTensor(device, p0);
    const grad = createGpuTensor(device, n);
    const g1 = createWebgpuOptimizer(device, bitopt.Adam8bit, [param], opts);
    for (const g of grads.slice(0, 2)) {
      writeGpuTensor(device, grad, g);
      await g1.step([grad]);
    }
    const bytes1 = bitopt.serializeStateDict(await g1.stateDictAsync());
    const p = await readGpuTensor(device, param);
    const cpu = new bitopt.Adam8bit([p], opts);
    cpu.loadStateDict(bitopt.deserializeStateDict(bytes1));
    for (const g of grads.slice(2, 4)) await cpu.step([g]);
    const bytes2 = bitopt.serializeStateDict(cpu.stateDict());
    const param2 = createGpuTensor(device, p);
    const g2 = createWebgpuOptimizer(device, bitopt.Adam8bit, [param2], opts);
    g2.loadStateDict(bitopt.deserializeStateDict(bytes2));
    for (const g of grads.slice(4)) {
      writeGpuTensor(device, grad, g);
      await g2.step([grad]);
    }
    const out = await readGpuTensor(device, param2);
    const d = await g2.stateDictAsync();
    assert.equal(d.tensors[0].step, 6);
    assert.equal(d.tensors[0].clipHistory?.count, 6);
    // Within float32 rounding of the whole run's movement (8-bit codes may differ by one at ties).
    for (let i = 0; i < n; i++) {
      const moved = Math.abs(refAfter[5][i] - p0[i]);
      assert.ok(Math.abs(out[i] - refAfter[5][i]) <= 1e-6 * Math.abs(refAfter[5][i]) + 2e-2 * moved, `param ${i}: ${out[i]} vs ${refAfter[5][i]}`);
    }
    for (const x of [g1, g2]) x.destroy();
    for (const b of [param, param2, grad]) b.buffer.destroy();
  });
});
