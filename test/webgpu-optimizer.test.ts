/**
 * The WebGPU fused kernels against the CPU reference kernel, on SwiftShader where there is no
 * GPU (docs/architecture.md §5). Each step starts both paths from the SAME params and states (the CPU's
 * state dict uploaded to the GPU), so every comparison checks one fused step: parameters
 * within float32 rounding of the update, 8-bit codes equal except near-ties (then adjacent),
 * absmax and float32 states within float32 rounding. Covers every rule 4/8/32-bit, partial blocks
 * and partial vec4s, several block sizes, chunking (a forced small binding limit), grid-stride
 * walks and non-finite gradients; and that the GPU state of small tensors costs their logical
 * size (stateBytes), not whole tiles. 4-bit: odd lengths, all-zero blocks, and checkpoints that
 * travel CPU → GPU → CPU bit-exactly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as bitopt from '../src/index.js';
import type { Optimizer, StateDict, StateEntry } from '../src/index.js';
import { createGpuTensor, readGpuTensor, writeGpuTensor, type GpuTensor } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { createWebgpuOptimizer, type OptimizerClass, type WebgpuEngineOptions } from '../src/kernels/webgpu/optimizer.js';
import { rng } from './helpers/float64-rules.js';
import './helpers/swiftshader.js';

const gpu = await requestNodeDevice().catch(() => null);
const skip = gpu ? false : 'no WebGPU adapter (install chromium for SwiftShader, see docs/architecture.md §5)';
if (!gpu) console.log(`# webgpu tests skipped: ${skip}`);
const device = gpu?.device as GPUDevice;

/** Values over nine decades (so every map decade is used), random signs. */
function wide(n: number, r: () => number, scale: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (r() < 0.5 ? -1 : 1) * scale * 10 ** (-9 * r());
  return x;
}

type AnyClass = OptimizerClass<any>;

interface Case {
  name: string;
  cls: AnyClass;
  options?: Record<string, unknown>;
  length: number;
  engine?: WebgpuEngineOptions;
  steps?: number;
  nonFinite?: boolean;
  /** Gradient magnitude per step (varied to make percentile clipping act). */
  gradScales?: number[];
  /** Expected `stateBytes()` after the first step. */
  stateBytes?: number;
  /** The first `zeroHead` gradient elements are 0 at every step (all-zero state blocks). */
  zeroHead?: number;
}

/** Element i's code of a 4-bit (two per byte, low nibble first) or 8-bit code array. */
function codesOf(s: StateEntry, length: number): number[] {
  if (s.format === 'blockwise4') return Array.from({ length }, (_, i) => (i & 1 ? s.codes[i >> 1] >> 4 : s.codes[i >> 1] & 15));
  if (s.format === 'blockwise8') return Array.from(s.codes);
  throw new Error(`no codes in format ${s.format}`);
}

function sameFloat(a: number, b: number, rel: number, abs: number): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + abs;
}

function compareStates(label: string, gpuStates: StateEntry[], cpuStates: StateEntry[], length: number): void {
  assert.equal(gpuStates.length, cpuStates.length, `${label}: state count`);
  gpuStates.forEach((gs, k) => {
    const cs = cpuStates[k];
    assert.equal(gs.format, cs.format, `${label}: state ${k} format`);
    if ((gs.format === 'blockwise8' && cs.format === 'blockwise8') || (gs.format === 'blockwise4' && cs.format === 'blockwise4')) {
      assert.equal(gs.codes.length, cs.codes.length, `${label}: state ${k} code bytes`);
      assert.equal(gs.blockSize, cs.blockSize, `${label}: state ${k} block size`);
      assert.deepEqual(gs.map, cs.map, `${label}: state ${k} map`);
      const n = gs.format === 'blockwise4' ? length : cs.codes.length;
      const [gc, cc] = [codesOf(gs, n), codesOf(cs, n)];
      let mismatches = 0;
      for (let i = 0; i < n; i++) {
        if (gc[i] === cc[i]) continue;
        mismatches++;
        assert.ok(Math.abs(gc[i] - cc[i]) <= 1, `${label}: state ${k} code ${i}: gpu ${gc[i]} cpu ${cc[i]}`);
      }
      assert.ok(mismatches <= Math.max(2, n * 2e-3), `${label}: state ${k}: ${mismatches} of ${n} codes differ`);
      // An odd length leaves the last byte's high nibble unused: 0 in both.
      if (gs.format === 'blockwise4' && n & 1) assert.equal(gs.codes[gs.codes.length - 1] >> 4, 0, `${label}: state ${k}: unused nibble`);
      for (let b = 0; b < cs.absmax.length; b++) {
        assert.ok(sameFloat(gs.absmax[b], cs.absmax[b], 2e-6, 0), `${label}: state ${k} absmax ${b}: gpu ${gs.absmax[b]} cpu ${cs.absmax[b]}`);
      }
    } else if (gs.format === 'float32' && cs.format === 'float32') {
      let scale = 0;
      for (const v of cs.values) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < cs.values.length; i++) {
        assert.ok(sameFloat(gs.values[i], cs.values[i], 2e-6, scale * 1e-7), `${label}: state ${k}[${i}]: gpu ${gs.values[i]} cpu ${cs.values[i]}`);
      }
    }
  });
}

async function runCase(c: Case): Promise<void> {
  const r = rng(c.length * 31 + c.name.length);
  const n = c.length;
  const p0 = new Float32Array(n);
  for (let i = 0; i < n; i++) p0[i] = (r() - 0.5) * 2;
  const cpuParam = p0.slice();
  const cpu: Optimizer<any> = new c.cls([cpuParam], c.options);
  cpu.setKernel(bitopt.createReferenceKernel()); // the specification, whatever the default kernel is
  const param = createGpuTensor(device, p0);
  const gradT = createGpuTensor(device, n);
  const opt = createWebgpuOptimizer(device, c.cls, [param], c.options, c.engine);
  try {
    const steps = c.steps ?? 3;
    for (let t = 1; t <= steps; t++) {
      const label = `${c.name} n=${n} step ${t}`;
      const grad = wide(n, r, c.gradScales?.[t - 1] ?? 1);
      grad.fill(0, 0, Math.min(n, c.zeroHead ?? 0));
      const bad: number[] = [];
      if (c.nonFinite && t === 2) {
        for (const [i, v] of [[0, NaN], [5, Infinity], [n - 1, -Infinity], [Math.floor(n / 2), NaN]] as const) {
          grad[i] = v;
          bad.push(i);
        }
      }
      // Same starting point: the CPU's params and states on the GPU.
      writeGpuTensor(device, param, cpuParam);
      if (t > 1) opt.loadStateDict(cpu.stateDict());
      const before = cpuParam.slice();
      writeGpuTensor(device, gradT, grad);
      await opt.step([gradT]);
      await cpu.step([grad]);
      await opt.sync();
      if (c.stateBytes !== undefined) assert.equal(opt.stateBytes(), c.stateBytes, `${label}: GPU state bytes`);
      const got = await readGpuTensor(device, param);
      let mismatches = 0;
      for (let i = 0; i < n; i++) {
        const delta = Math.abs(cpuParam[i] - before[i]);
        if (!sameFloat(got[i], cpuParam[i], 3e-7, 1e-4 * delta + 1e-12)) {
          mismatches++;
          if (mismatches > Math.max(1, n * 5e-4)) assert.fail(`${label}: param ${i}: gpu ${got[i]} cpu ${cpuParam[i]} (was ${before[i]})`);
        }
      }
      for (const i of bad) assert.equal(got[i], before[i], `${label}: param ${i} with a non-finite gradient changed`);
      const gd: StateDict = await opt.stateDictAsync();
      const cd = cpu.stateDict();
      assert.equal(gd.tensors[0].step, cd.tensors[0].step, `${label}: step count`);
      compareStates(label, gd.tensors[0].states, cd.tensors[0].states, n);
      const [gh, ch] = [gd.tensors[0].clipHistory, cd.tensors[0].clipHistory];
      assert.equal(gh === null, ch === null, `${label}: clip history presence`);
      if (gh && ch) {
        assert.equal(gh.count, ch.count, `${label}: clip history count`);
        for (let i = 0; i < Math.min(ch.count, 100); i++) assert.ok(sameFloat(gh.norms[i], ch.norms[i], 1e-5, 0), `${label}: clip norm ${i}: gpu ${gh.norms[i]} cpu ${ch.norms[i]}`);
      }
      // All-zero blocks: absmax 0 and every code the code of 0, exactly.
      for (const s of gd.tensors[0].states) {
        if (s.format === 'float32' || !c.zeroHead) continue;
        const zero = s.map.reduce((best, v, code) => (Math.abs(v) < Math.abs(s.map[best]) ? code : best), 0);
        const codes = codesOf(s, n);
        const bs: number = s.blockSize;
        for (let b = 0; (b + 1) * bs <= Math.min(n, c.zeroHead); b++) {
          assert.equal(s.absmax[b], 0, `${label}: all-zero block ${b}: absmax`);
          for (let i = b * bs; i < (b + 1) * bs; i++) assert.equal(codes[i], zero, `${label}: all-zero block ${b}: code ${i}`);
        }
      }
      for (const i of bad) {
        for (const s of gd.tensors[0].states) {
          if (s.format === 'float32') {
            assert.equal(s.values[i], 0, `${label}: state of element ${i} with a non-finite gradient is not 0`);
            continue;
          }
          // The code nearest 0 (4-bit second moments have no 0 level: their smallest, 1/16).
          const zero = s.map.reduce((best, v, c) => (Math.abs(v) < Math.abs(s.map[best]) ? c : best), 0);
          assert.equal(codesOf(s, n)[i], zero, `${label}: state of element ${i} with a non-finite gradient does not have the code of 0`);
        }
      }
    }
  } finally {
    opt.destroy();
    param.buffer.destroy();
    gradT.buffer.destroy();
  }
}

const pairs: [string, AnyClass, AnyClass, Record<string, unknown>?][] = [
  ['Adam', bitopt.Adam8bit, bitopt.Adam, { weightDecay: 0.01 }],
  ['AdamW', bitopt.AdamW8bit, bitopt.AdamW],
  ['SGD', bitopt.SGD8bit, bitopt.SGD, { momentum: 0.9, weightDecay: 1e-3 }],
  ['RMSprop', bitopt.RMSprop8bit, bitopt.RMSprop, { weightDecay: 1e-3 }],
  ['Adagrad', bitopt.Adagrad8bit, bitopt.Adagrad],
  ['Lion', bitopt.Lion8bit, bitopt.Lion, { weightDecay: 0.1 }],
  ['AdEMAMix', bitopt.AdEMAMix8bit, bitopt.AdEMAMix],
  ['LAMB', bitopt.LAMB8bit, bitopt.LAMB, { maxUnorm: 0.5, lr: 1e-2 }],
  ['LARS', bitopt.LARS8bit, bitopt.LARS, { lr: 1e-1 }],
];

describe('webgpu fused kernels vs the CPU reference', { skip }, () => {
  before(() => assert.ok(device));
  for (const [name, c8, c32, options] of pairs) {
    // 10002 elements: a partial last block and a partial last vec4.
    test(`${name} 8-bit`, () => runCase({ name: `${name}8bit`, cls: c8, options, length: 10002, nonFinite: true }));
    test(`${name} 32-bit`, () => runCase({ name, cls: c32, options, length: 5001, nonFinite: true }));
  }
  for (const blockSize of [64, 2048, 4096]) {
    test(`Adam 8-bit, blockSize ${blockSize}`, () =>
      runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, options: { blockSize }, length: 3 * blockSize + 37 + 4096, steps: 2 }));
  }
  test('chunking: a 64 KiB binding limit and 3 workgroups per chunk (8-bit AdEMAMix, LAMB)', async () => {
    const engine = { maxBindingBytes: 65536, maxWorkgroups: 3 };
    await runCase({ name: 'AdEMAMix8bit', cls: bitopt.AdEMAMix8bit, length: 40000, engine, steps: 2 });
    await runCase({ name: 'LAMB8bit', cls: bitopt.LAMB8bit, options: { maxUnorm: 0.5 }, length: 40000, engine, steps: 2 });
    await runCase({ name: 'Adam', cls: bitopt.Adam, length: 40000, engine, steps: 2 });
  });
  test('2 and 4 vec4s per thread per tile (unroll), several block sizes', async () => {
    for (const [blockSize, unroll] of [[64, 2], [256, 2], [1024, 2], [256, 4], [2048, 4]]) {
      await runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, options: { blockSize }, length: 2 * blockSize * unroll + 4099, engine: { unroll }, steps: 2, nonFinite: true });
    }
    await runCase({ name: 'AdEMAMix8bit', cls: bitopt.AdEMAMix8bit, length: 12345, engine: { unroll: 2, maxBindingBytes: 65536, maxWorkgroups: 2 }, steps: 2 });
  });
  test('8-bit with pairs of neighbouring vec4s per thread (engine option pairs), several block sizes', async () => {
    for (const [blockSize, unroll] of [[64, 1], [256, 1], [256, 2], [2048, 1], [4096, 1]]) {
      await runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, options: { blockSize }, length: 2 * blockSize + 2048 * unroll + 4099, engine: { pairs: true, unroll }, steps: 2, nonFinite: true });
    }
    await runCase({ name: 'AdEMAMix8bit', cls: bitopt.AdEMAMix8bit, length: 12345, engine: { pairs: true, maxBindingBytes: 65536, maxWorkgroups: 2 }, steps: 2 });
    await runCase({ name: 'LAMB8bit', cls: bitopt.LAMB8bit, options: { maxUnorm: 0.5, min8bitSize: 0 }, length: 1025, engine: { pairs: true, subgroups: false }, steps: 2 });
  });
  test('8-bit with the exact encode tables (engine option exactEncode), with and without pairs', async () => {
    for (const [name, cls, options] of pairs.map(([n, c8, , o]) => [n, c8, o] as const)) {
      await runCase({ name: `${name}8bit`, cls, options, length: 10002, engine: { exactEncode: true }, steps: 2, nonFinite: true });
    }
    await runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, options: { blockSize: 64 }, length: 9000, engine: { exactEncode: true, pairs: true }, steps: 2, nonFinite: true });
    await runCase({ name: 'AdEMAMix8bit', cls: bitopt.AdEMAMix8bit, length: 12345, engine: { exactEncode: true, pairs: true, unroll: 2 }, steps: 2 });
  });
  test('percentile clipping (history, scale and checkpoint on the GPU)', async () => {
    const gradScales = [1, 3, 0.5, 10];
    await runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, options: { percentileClipping: 5 }, length: 9001, steps: 4, gradScales, nonFinite: true });
    await runCase({ name: 'LAMB', cls: bitopt.LAMB, options: { percentileClipping: 50, maxUnorm: 0.5 }, length: 5000, steps: 4, gradScales });
    await runCase({ name: 'Lion8bit', cls: bitopt.Lion8bit, options: { percentileClipping: 20 }, length: 40000, steps: 3, gradScales, engine: { maxBindingBytes: 65536, maxWorkgroups: 3 } });
  });
  test('without subgroups (shared-memory atomics only)', () =>
    runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, length: 9000, engine: { subgroups: false }, steps: 2, nonFinite: true }));
  test('RAdam 8- and 32-bit through both branches (b2 0.9: momentum steps 1-5, rectified from step 6)', async () => {
    const options = { betas: [0.9, 0.9], weightDecay: 1e-3 };
    await runCase({ name: 'RAdam8bit', cls: bitopt.RAdam8bit, options, length: 10002, steps: 8, nonFinite: true });
    await runCase({ name: 'RAdam', cls: bitopt.RAdam, options, length: 5001, steps: 8, nonFinite: true });
  });
});

const pairs4: [string, AnyClass, Record<string, unknown>?, number?][] = [
  ['Adam', bitopt.Adam4bit, { weightDecay: 0.01 }],
  ['AdamW', bitopt.AdamW4bit],
  ['SGD', bitopt.SGD4bit, { momentum: 0.9, weightDecay: 1e-3, allow4bitWithoutParity: true }],
  ['RMSprop', bitopt.RMSprop4bit, { weightDecay: 1e-3 }],
  ['Adagrad', bitopt.Adagrad4bit],
  ['Lion', bitopt.Lion4bit, { weightDecay: 0.1, allow4bitWithoutParity: true }],
  ['AdEMAMix', bitopt.AdEMAMix4bit],
  ['LAMB', bitopt.LAMB4bit, { maxUnorm: 0.5, lr: 1e-2, allow4bitWithoutParity: true }],
  ['LARS', bitopt.LARS4bit, { lr: 1e-1, allow4bitWithoutParity: true }],
  // b2 0.9: momentum steps 1-5, rectified from step 6.
  ['RAdam', bitopt.RAdam4bit, { betas: [0.9, 0.9], weightDecay: 1e-3, allow4bitWithoutParity: true }, 8],
];
const blockwise4Bytes = (S: number, n: number, blockSize: number) => S * Math.ceil(n / blockSize) * (blockSize / 2 + 4);

describe('webgpu 4-bit kernels vs the CPU reference', { skip }, () => {
  for (const [name, cls, options, steps] of pairs4) {
    // 10001 elements: odd (an unused last nibble), a partial last block and vec4; 300 zero
    // gradients first: two all-zero blocks of 128.
    // (SGD, RMSprop and RAdam add their weight decay to the gradient: there the blocks are not zero.)
    const zeroHead = ['SGD', 'RMSprop', 'RAdam'].includes(name) ? 0 : 300;
    test(`${name} 4-bit`, () => runCase({ name: `${name}4bit`, cls, options, length: 10001, nonFinite: true, zeroHead, steps }));
  }
  test('block sizes 64 to 4096, 1 to 4 words per thread per tile (unroll)', async () => {
    for (const [blockSize, unroll] of [[64, 1], [256, 1], [2048, 1], [4096, 1], [64, 2], [128, 4], [1024, 2]]) {
      await runCase({ name: 'Adam4bit', cls: bitopt.Adam4bit, options: { blockSize }, length: 2 * blockSize + 2048 * unroll + 4099, engine: { unroll }, steps: 2, nonFinite: true, zeroHead: 2 * blockSize });
    }
  });
  test('chunking (64 KiB bindings, 3 workgroups per chunk), no subgroups, percentile clipping', async () => {
    const engine = { maxBindingBytes: 65536, maxWorkgroups: 3 };
    await runCase({ name: 'AdEMAMix4bit', cls: bitopt.AdEMAMix4bit, length: 40001, engine, steps: 2 });
    await runCase({ name: 'LAMB4bit', cls: bitopt.LAMB4bit, options: { maxUnorm: 0.5, allow4bitWithoutParity: true }, length: 40001, engine, steps: 2 });
    await runCase({ name: 'Adam4bit', cls: bitopt.Adam4bit, length: 9001, engine: { subgroups: false }, steps: 2, nonFinite: true, zeroHead: 256 });
    await runCase({ name: 'Adam4bit', cls: bitopt.Adam4bit, options: { percentileClipping: 5 }, length: 9001, steps: 4, gradScales: [1, 3, 0.5, 10], nonFinite: true });
  });
  test('state sized to the tensor: S·blocks·(blockSize/2 + 4) bytes; float32 under min8bitSize', async () => {
    for (const n of [1, 10, 255, 1000, 1025, 5001]) {
      await runCase({ name: 'Adam4bit', cls: bitopt.Adam4bit, options: { min8bitSize: 0 }, length: n, steps: 2, stateBytes: blockwise4Bytes(2, n, 128) });
      await runCase({ name: 'Lion4bit', cls: bitopt.Lion4bit, options: { min8bitSize: 0, blockSize: 64, allow4bitWithoutParity: true }, length: n, steps: 2, stateBytes: blockwise4Bytes(1, n, 64) });
    }
    await runCase({ name: 'Adam4bit', cls: bitopt.Adam4bit, length: 1000, steps: 1, stateBytes: float32Bytes(2, 1000) });
  });
  test('checkpoints: CPU → GPU → CPU bit-exactly (odd length, zero blocks), and a GPU step continues as the CPU', async () => {
    const r = rng(41);
    const [n0, n1] = [5001, 4097];
    const w = [wide(n0, r, 1), wide(n1, r, 1)];
    const grads = [0, 1, 2].map(() => [wide(n0, r, 1), wide(n1, r, 1).fill(0, 0, 512)]);
    const cpu = new bitopt.Adam4bit(w.map((x) => x.slice()), { lr: 1e-2 });
    cpu.setKernel(bitopt.createReferenceKernel());
    await cpu.step(grads[0]);
    await cpu.step(grads[1]);
    const dict = cpu.stateDict();
    assert.deepEqual(dict.tensors[0].states.map((s) => s.format), ['blockwise4', 'blockwise4']);
    const ps = cpu.params.map((x) => createGpuTensor(device, x));
    const gs = grads[2].map((x) => createGpuTensor(device, x));
    tensors4.push(...ps, ...gs);
    const opt = createWebgpuOptimizer(device, bitopt.Adam4bit, ps, { lr: 1e-2 });
    opt.loadStateDict(dict);
    assert.equal(opt.stateBytes(), blockwise4Bytes(2, n0, 128) + blockwise4Bytes(2, n1, 128));
    assert.deepEqual((await opt.stateDictAsync()).tensors, dict.tensors, 'GPU export of a CPU checkpoint');
    const back = new bitopt.Adam4bit(w.map((x) => new Float32Array(x.length)), { lr: 1e-2 });
    back.loadStateDict(await opt.stateDictAsync());
    assert.deepEqual(back.stateDict().tensors, dict.tensors, 'CPU import of the GPU export');
    // One more step on both: parameters within float32 rounding, the GPU's state loads on the CPU.
    await opt.step(gs);
    await cpu.step(grads[2]);
    const after = await opt.stateDictAsync();
    for (let t = 0; t < 2; t++) {
      const got = await readGpuTensor(device, ps[t]);
      let worst = 0;
      got.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - cpu.params[t][i]))));
      assert.ok(worst < 1e-6, `tensor ${t}: max |Δp| ${worst}`);
      compareStates(`tensor ${t}`, after.tensors[t].states, cpu.stateDict().tensors[t].states, t === 0 ? n0 : n1);
    }
    back.loadStateDict(after);
    assert.deepEqual(back.stateDict().tensors, after.tensors);
    opt.destroy();
  });
  const tensors4: GpuTensor[] = [];
  after(() => tensors4.forEach((t) => t.buffer.destroy()));
});

/**
 * Logical state sizes, from the storage formats alone (S states of n elements): float32 is 4 bytes
 * per element rounded up to a vec4; 8-bit is one code per element of each whole block plus a
 * float32 absmax per block. The GPU must not pad a tensor's state to whole tiles.
 */
const float32Bytes = (S: number, n: number) => S * Math.ceil(n / 4) * 16;
const blockwise8Bytes = (S: number, n: number, blockSize: number) => S * Math.ceil(n / blockSize) * (blockSize + 4);

describe('webgpu state sized to the tensor (no whole-tile padding), results as the CPU reference', { skip }, () => {
  const sizes = [1, 10, 256, 1000, 1025, 5000];
  // Non-finite gradients are put at elements 0, 5, n/2 and n-1: only for n > 5.
  const nonFinite = (n: number) => n > 5;
  test('Adam (32-bit, two fused states)', async () => {
    for (const n of sizes) await runCase({ name: 'Adam', cls: bitopt.Adam, length: n, nonFinite: nonFinite(n), stateBytes: float32Bytes(2, n) });
  });
  test('Adam8bit: float32 state under min8bitSize (4096), 8-bit blocks above', async () => {
    for (const n of sizes) {
      const stateBytes = n < 4096 ? float32Bytes(2, n) : blockwise8Bytes(2, n, 256);
      await runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, length: n, nonFinite: nonFinite(n), stateBytes });
    }
  });
  test('Adam8bit with min8bitSize 0: small 8-bit tensors hold only their blocks (block sizes 64, 256; unroll 4)', async () => {
    for (const n of sizes) {
      await runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, options: { min8bitSize: 0 }, length: n, nonFinite: nonFinite(n), steps: 2, stateBytes: blockwise8Bytes(2, n, 256) });
    }
    for (const n of [10, 1000, 4200]) {
      await runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, options: { min8bitSize: 0, blockSize: 64 }, length: n, steps: 2, stateBytes: blockwise8Bytes(2, n, 64) });
      // A tile of 4096 elements: 5000 elements are 20 blocks, not 2 tiles of 16.
      await runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, options: { min8bitSize: 0 }, length: n + 800, engine: { unroll: 4 }, steps: 2, stateBytes: blockwise8Bytes(2, n + 800, 256) });
    }
  });
  test('one state (SGD momentum, LARS8bit) and three (AdEMAMix)', async () => {
    for (const n of [3, 10, 1000, 1025]) {
      await runCase({ name: 'SGD', cls: bitopt.SGD, options: { momentum: 0.9 }, length: n, steps: 2, stateBytes: float32Bytes(1, n) });
      await runCase({ name: 'AdEMAMix', cls: bitopt.AdEMAMix, length: n, steps: 2, stateBytes: float32Bytes(3, n) });
      await runCase({ name: 'LARS8bit', cls: bitopt.LARS8bit, options: { lr: 1e-1, min8bitSize: 0 }, length: n, steps: 2, stateBytes: blockwise8Bytes(1, n, 256) });
    }
  });
  test('trust ratio (LAMB, LAMB8bit) and percentile clipping on small tensors', async () => {
    const gradScales = [1, 3, 0.5, 10];
    for (const n of [1, 10, 1000, 1025]) {
      await runCase({ name: 'LAMB', cls: bitopt.LAMB, options: { maxUnorm: 0.5, lr: 1e-2 }, length: n, nonFinite: nonFinite(n), stateBytes: float32Bytes(2, n) });
      await runCase({ name: 'LAMB8bit', cls: bitopt.LAMB8bit, options: { maxUnorm: 0.5, lr: 1e-2, min8bitSize: 0 }, length: n, steps: 2, stateBytes: blockwise8Bytes(2, n, 256) });
      await runCase({ name: 'Adam', cls: bitopt.Adam, options: { percentileClipping: 50 }, length: n, steps: 4, gradScales, stateBytes: float32Bytes(2, n) });
    }
  });
  test('chunks of one tile: the short last tile in a chunk of its own (32-bit), missing blocks in the last chunk (8-bit)', async () => {
    const engine = { maxBindingBytes: 8192, maxWorkgroups: 2 };
    for (const n of [1025, 2051, 3000]) {
      await runCase({ name: 'Adam', cls: bitopt.Adam, length: n, engine, steps: 2, nonFinite: true, stateBytes: float32Bytes(2, n) });
      await runCase({ name: 'LAMB', cls: bitopt.LAMB, options: { maxUnorm: 0.5 }, length: n, engine, steps: 2, stateBytes: float32Bytes(2, n) });
    }
    // 8 tiles per chunk (absmax offsets must stay 256-byte aligned): the second chunk has 1500 elements in 2 tiles, 6 of 8 blocks.
    await runCase({ name: 'Adam8bit', cls: bitopt.Adam8bit, length: 8192 + 1500, engine: { maxBindingBytes: 32768, maxWorkgroups: 2 }, steps: 2, nonFinite: true, stateBytes: blockwise8Bytes(2, 9692, 256) });
  });
});

describe('webgpu optimizer API', { skip }, () => {
  let tensors: GpuTensor[] = [];
  after(() => tensors.forEach((t) => t.buffer.destroy()));

  test('small tensors keep float32 state, large ones 8-bit; state dict round-trips through the CPU class', async () => {
    const r = rng(7);
    const small = createGpuTensor(device, wide(100, r, 1));
    const big = createGpuTensor(device, wide(5000, r, 1));
    tensors.push(small, big);
    const opt = createWebgpuOptimizer(device, bitopt.Adam8bit, [small, big], { lr: 1e-2 });
    await opt.step([createGpuTensor(device, wide(100, r, 1)), createGpuTensor(device, wide(5000, r, 1))]);
    const dict = await opt.stateDictAsync();
    assert.equal(dict.optimizer, 'Adam8bit');
    assert.deepEqual(dict.tensors[0].states.map((s) => s.format), ['float32', 'float32']);
    assert.deepEqual(dict.tensors[1].states.map((s) => s.format), ['blockwise8', 'blockwise8']);
    const cpu = new bitopt.Adam8bit([new Float32Array(100), new Float32Array(5000)], { lr: 1e-2 });
    cpu.loadStateDict(dict);
    const back = cpu.stateDict();
    opt.loadStateDict(back);
    const again = await opt.stateDictAsync();
    assert.deepEqual(again.tensors, dict.tensors);
    assert.equal(opt.stepCount(1), 1);
    opt.destroy();
  });

  test('parameters join later (with a checkpointed state or none); a null gradient skips its parameter', async () => {
    const r = rng(21);
    const [w0, w1] = [wide(5000, r, 1), wide(3000, r, 1)];
    const [g0, g1] = [wide(5000, r, 1), wide(3000, r, 1)];
    // The CPU writes the state parameter 1 joins with.
    const cpu = new bitopt.Adam8bit([w1.slice()], { lr: 1e-2, min8bitSize: 1024 });
    cpu.setKernel(bitopt.createReferenceKernel());
    await cpu.step([g1]);
    const saved = cpu.stateDict().tensors[0];
    const stepped1 = cpu.params[0].slice(); // parameter 1 as the CPU left it
    const p0 = createGpuTensor(device, w0);
    const p1 = createGpuTensor(device, stepped1);
    const solo0 = createGpuTensor(device, w0);
    const grads = [createGpuTensor(device, g0), createGpuTensor(device, g1)];
    tensors.push(p0, p1, solo0, ...grads);
    const opt = createWebgpuOptimizer(device, bitopt.Adam8bit, [{ params: [] }], { lr: 1e-2, min8bitSize: 1024 });
    const solo = createWebgpuOptimizer(device, bitopt.Adam8bit, [solo0], { lr: 1e-2, min8bitSize: 1024 });
    assert.equal(opt.addParam(p0), 0);
    assert.throws(() => opt.addParam(createGpuTensor(device, 2999), { state: saved }), /tensor 1: state is for 3000 elements but the parameter has 2999/);
    assert.throws(() => opt.addParam(p0), /appears more than once/);
    assert.equal(opt.addParam(p1, { state: saved }), 1);
    assert.equal(opt.stepCount(1), 1);
    await opt.step([grads[0], null]);
    await solo.step([grads[0]]);
    await opt.sync();
    assert.deepEqual(await readGpuTensor(device, p0), await readGpuTensor(device, solo0));
    assert.deepEqual(await readGpuTensor(device, p1), stepped1, 'skipped: values unchanged');
    const dict = await opt.stateDictAsync();
    assert.deepEqual(dict.tensors[1], saved, 'skipped: state and step unchanged');
    assert.deepEqual(dict.tensors[0], (await solo.stateDictAsync()).tensors[0]);
    // Step parameter 1 alone: it continues from the checkpoint as the CPU does.
    const cpuParam = cpu.params[0];
    await cpu.step([g1]);
    await opt.step([null, grads[1]]);
    await opt.sync();
    const got = await readGpuTensor(device, p1);
    let worst = 0;
    got.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - cpuParam[i]))));
    assert.ok(worst < 1e-6, `max |Δp| ${worst}`);
    assert.equal(opt.stepCount(1), 2);
    opt.destroy();
    solo.destroy();
  });

  test('a step recorded into the caller\'s encoder after its own work is one submit, done by the caller\'s function', async () => {
    const r = rng(22);
    const w = wide(4096, r, 1);
    const [a, b, staging] = [createGpuTensor(device, w), createGpuTensor(device, w), createGpuTensor(device, 4096)];
    const g = createGpuTensor(device, wide(4096, r, 1));
    tensors.push(a, b, staging, g);
    const ours = createWebgpuOptimizer(device, bitopt.Lion8bit, [a]);
    const plain = createWebgpuOptimizer(device, bitopt.Lion8bit, [b]);
    writeGpuTensor(device, staging, w.map((x) => x + 1));
    // The caller's work first: copy new values into the parameter; the step must see them.
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(staging.buffer, 0, a.buffer, 0, 4096 * 4);
    let submits = 0;
    await ours.step([g], { encoder, submit: () => (submits++, device.queue.submit([encoder.finish()])) });
    writeGpuTensor(device, b, w.map((x) => x + 1));
    await plain.step([g]);
    await ours.sync();
    assert.equal(submits, 1);
    assert.deepEqual(await readGpuTensor(device, a), await readGpuTensor(device, b));
    ours.destroy();
    plain.destroy();
  });

  test('bad input throws an Error naming the problem', async () => {
    const p = createGpuTensor(device, 64);
    tensors.push(p);
    assert.throws(() => createWebgpuOptimizer(device, bitopt.Adam8bit, [p], { lr: -1 } as never), /lr/);
    assert.throws(() => createWebgpuOptimizer(device, bitopt.Adam8bit, [p], { nope: 1 } as never), /unknown option 'nope'/);
    const opt = createWebgpuOptimizer(device, bitopt.Adam8bit, [p]);
    await assert.rejects(opt.step([createGpuTensor(device, 8)]), /gradient 0 has 8 elements/);
    await assert.rejects(opt.step([]), /got 0 gradients/);
    opt.destroy();
  });

  test('a WebGPU validation error (a destroyed gradient buffer) surfaces once as a clear Error from sync()', async () => {
    const p = createGpuTensor(device, 4096);
    const g = createGpuTensor(device, 4096);
    tensors.push(p);
    const opt = createWebgpuOptimizer(device, bitopt.Lion8bit, [p]);
    await opt.step([g]);
    await opt.sync();
    g.buffer.destroy();
    await opt.step([g]); // enqueued: WebGPU reports the error asynchronously
    await assert.rejects(opt.sync(), /Lion8bit\.step: WebGPU validation error/);
    await opt.sync(); // reported once (issue 13; test/reliability-webgpu.test.ts)
    assert.equal(opt.stepCount(0), 1, 'the failed step was taken back');
    opt.destroy();
  });
});
