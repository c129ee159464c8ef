/**
 * The fused kernels' 8-bit encoder (WGSL, structure-based search: no binary search) against
 * the reference `nearestCode` plus the sign-keeping nudge, on values spread over every decade
 * of the dynamic maps, the exact map values, their midpoints' neighbourhoods and the edges
 * (0, ±1, the smallest magnitudes), and the unsigned states' rule that a positive value never
 * takes the code of 0 (also inside the fused Adam8bit kernel). Runs on SwiftShader where there
 * is no GPU.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Adam8bit, createDynamicMap, nearestCode } from '../src/index.js';
import { createGpuTensor } from '../src/kernels/webgpu/device.js';
import { createWebgpuOptimizer } from '../src/kernels/webgpu/optimizer.js';
import { readBuffer, writeBytes } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { exactCodeWgsl, nearestCodeWgsl, tableData } from '../src/kernels/webgpu/tables.js';
import './helpers/swiftshader.js';

const gpu = await requestNodeDevice().catch(() => null);
const skip = gpu ? false : 'no WebGPU adapter (install chromium for SwiftShader, see docs/architecture.md §5)';

/** Codes of x (already divided by absmax); unsigned codes also see v, the value before the division. */
async function encodeOnGpu(device: GPUDevice, x: Float32Array, signed: boolean, v: Float32Array = x, exact = false): Promise<Uint32Array> {
  const encoder = exact ? exactCodeWgsl({ signed, unsigned: !signed }) : nearestCodeWgsl;
  const call = exact ? `encode${signed ? 'Signed' : 'Unsigned'}X(xs[i], vs[i])` : signed ? 'encodeSigned(xs[i])' : 'encodeUnsigned(xs[i], vs[i])';
  const code = `
@group(0) @binding(0) var<storage, read> tables: array<f32>;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<storage, read> vs: array<f32>;
${encoder}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  loadTables(lid.x);
  workgroupBarrier();
  let i = wid.x * 256u + lid.x;
  if (i < arrayLength(&xs)) { out[i] = ${call}; }
}`;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const tables = device.createBuffer({ size: tableData().byteLength, usage });
  writeBytes(device, tables, 0, tableData());
  const xs = device.createBuffer({ size: x.byteLength, usage });
  writeBytes(device, xs, 0, x);
  const out = device.createBuffer({ size: x.byteLength, usage });
  const vBuf = device.createBuffer({ size: x.byteLength, usage });
  writeBytes(device, vBuf, 0, v);
  const bound = signed && !exact ? [tables, xs, out] : [tables, xs, out, vBuf]; // the search's signed shader has no vs
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  const bg = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: bound.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bg);
  pass.dispatchWorkgroups(Math.ceil(x.length / 256));
  pass.end();
  device.queue.submit([enc.finish()]);
  const result = new Uint32Array(await readBuffer(device, out, x.byteLength));
  for (const b of [tables, xs, out, vBuf]) b.destroy();
  return result;
}

/**
 * The reference: nearest code, then the state rule of Blockwise8State: signed states keep
 * their sign, a positive unsigned state takes the smallest positive value rather than 0.
 */
function referenceCode(map: Float32Array, x: number, signed: boolean): number {
  let c = nearestCode(map, x);
  if (signed) {
    if (x > 0 && map[c] < 0) c++;
    else if (x < 0 && map[c] >= 0) c--;
  } else if (x > 0 && map[c] === 0) {
    c = map.findIndex((v) => v > 0);
  }
  return c;
}

function inputs(map: Float32Array, signed: boolean): Float32Array {
  const xs: number[] = [0, 1, signed ? -1 : 0.5, 1e-9, 2.7e-7, 5.5e-7, 1e-20, 1e-38, 1.5e-7, 1.7e-7];
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    xs.push(v, Math.fround(v * (1 + 1e-6)), Math.fround(v * (1 - 1e-6)));
    if (i + 1 < map.length) {
      const mid = (v + map[i + 1]) / 2;
      xs.push(Math.fround(mid), Math.fround(mid * (1 + 1e-5)), Math.fround(mid * (1 - 1e-5)));
    }
  }
  let s = 12345;
  for (let i = 0; i < 20000; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const mag = 10 ** (-9 * (s / 2 ** 32));
    s = (s * 1664525 + 1013904223) >>> 0;
    xs.push((signed && s & 1 ? -1 : 1) * mag);
  }
  return Float32Array.from(xs.map((v) => Math.max(signed ? -1 : 0, Math.min(1, v))));
}

describe('webgpu 8-bit encoder', { skip }, () => {
  for (const signed of [true, false]) {
    test(`${signed ? 'signed' : 'unsigned'} map: codes equal the reference except at exact ties`, async () => {
      const map = createDynamicMap(signed);
      const x = inputs(map, signed);
      const got = await encodeOnGpu(gpu!.device, x, signed);
      let ties = 0;
      for (let i = 0; i < x.length; i++) {
        const want = referenceCode(map, x[i], signed);
        if (got[i] === want) continue;
        // A tie: x (nearly) equidistant from both codes' values.
        const dGot = Math.abs(x[i] - map[got[i]]);
        const dWant = Math.abs(x[i] - map[want]);
        assert.ok(Math.abs(got[i] - want) === 1 && Math.abs(dGot - dWant) <= 3e-7 * Math.abs(x[i]) + 1e-12, `x=${x[i]}: gpu code ${got[i]} (${map[got[i]]}), reference ${want} (${map[want]})`);
        ties++;
      }
      assert.ok(ties <= 2 * map.length, `${ties} ties`);
    });
  }

  for (const signed of [true, false]) {
    test(`exact tables (engine option exactEncode), ${signed ? 'signed' : 'unsigned'}: codes EQUAL the reference on every input`, async () => {
      const map = createDynamicMap(signed);
      const x = inputs(map, signed);
      const got = await encodeOnGpu(gpu!.device, x, signed, x, true);
      for (let i = 0; i < x.length; i++) assert.equal(got[i], referenceCode(map, x[i], signed), `x=${x[i]}`);
      // The nudges see the value before scaling: a negative (or positive) value whose quotient is ±0.
      const z = Float32Array.of(0, -0, 0, 0);
      const v = Float32Array.of(-1e-30, 1e-30, 1e-30, 0);
      const codes = await encodeOnGpu(gpu!.device, z, signed, v, true);
      const smallestPositive = map.findIndex((m) => m > 0);
      assert.deepEqual(Array.from(codes), signed ? [126, 127, 127, 127] : [0, smallestPositive, smallestPositive, 0]);
    });
  }

  test('unsigned: a positive state whose quotient is 0 or tiny takes the smallest positive code; 0 the code of 0', async () => {
    const map = createDynamicMap(false);
    const smallest = map.findIndex((v) => v > 0);
    // (x = v / absmax, v): a quotient that underflowed (or was flushed) to 0 from v > 0, a
    // tiny quotient, an exact 0, and a value just past the first midpoint.
    const x = Float32Array.of(0, 1e-9, 0, 0, 3e-7);
    const v = Float32Array.of(1e-30, 1e-9, 0, -0, 3e-7);
    const got = await encodeOnGpu(gpu!.device, x, false, v);
    assert.deepEqual(Array.from(got), [smallest, smallest, 0, 0, nearestCode(map, 3e-7)]);
  });

  test('fused Adam8bit step: v at 1e-9 of absmax or underflowing keeps the smallest positive code, v = 0 the code of 0', async () => {
    const device = gpu!.device;
    const map = createDynamicMap(false);
    const smallest = map.findIndex((v) => v > 0);
    // Step 1: v = 0.001·g². Element 0 sets absmax (v = 1e33); element 1: v/absmax = 1e-9;
    // element 2: v = 1e-17, v/absmax = 1e-50 (0 in float32); the rest: g = 0.
    const g = new Float32Array(256);
    g.set([1e18, 1e18 * Math.sqrt(1e-9), 1e-7]);
    const opt = createWebgpuOptimizer(device, Adam8bit, [createGpuTensor(device, new Float32Array(256))], { blockSize: 64, min8bitSize: 0 });
    await opt.step([createGpuTensor(device, g)]);
    await opt.sync();
    const e = (await opt.stateDictAsync()).tensors[0].states[1];
    assert.ok(e.format === 'blockwise8');
    assert.deepEqual(Array.from(e.codes.subarray(0, 4)), [255, smallest, smallest, 0]);
    assert.ok(e.codes.subarray(3).every((c) => c === 0), 'zero gradients keep v at the code of 0');
  });
});
