/**
 * The fused kernels' 4-bit encoders and decoders (WGSL, src/kernels/webgpu/codes4.ts) against a
 * brute-force reference written here: the nearest of the 16 map values in float64 with ties to
 * the lower code, then the sign nudge of docs/architecture.md §1.3 for signed states (the sign
 * of the value before the division by absmax). The GPU encoders are exact given the quotient,
 * so the codes must be EQUAL on every input, including exact midpoints and their float32
 * neighbours, ±0 and denormals. Decoding must equal f32(map[code] · absmax). SwiftShader where
 * there is no GPU.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stateMap4 } from '../src/codecs/blockwise4.js';
import { readBuffer, writeBytes } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { codes4Wgsl, signedThresholds4 } from '../src/kernels/webgpu/codes4.js';
import './helpers/swiftshader.js';

const gpu = await requestNodeDevice().catch(() => null);
const skip = gpu ? false : 'no WebGPU adapter (install chromium for SwiftShader, see docs/architecture.md §5)';

/** Runs `expr` (WGSL over vec4s x, v of the inputs, result vec4<u32> or vec4<f32> bits) per vec4. */
async function run(device: GPUDevice, expr: string, x: Float32Array, v: Float32Array): Promise<Uint32Array> {
  const code = `
@group(0) @binding(0) var<storage, read> xs: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> vs: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<u32>>;
${codes4Wgsl()}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  loadTables4(lid.x);
  workgroupBarrier();
  let i = wid.x * 256u + lid.x;
  if (i < arrayLength(&xs)) { let x = xs[i]; let v = vs[i]; out[i] = ${expr}; }
}`;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const bufs = [x, v, x].map((d) => device.createBuffer({ size: d.byteLength, usage }));
  writeBytes(device, bufs[0], 0, x);
  writeBytes(device, bufs[1], 0, v);
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bg);
  pass.dispatchWorkgroups(Math.ceil(x.length / 4 / 256));
  pass.end();
  device.queue.submit([enc.finish()]);
  const result = new Uint32Array(await readBuffer(device, bufs[2], x.byteLength));
  bufs.forEach((b) => b.destroy());
  return result;
}

/** Brute force: nearest map value (float64 distances), ties to the lower code; then the sign nudge. */
function reference(map: Float32Array, x: number, v: number, signed: boolean): number {
  let best = 0;
  for (let c = 1; c < map.length; c++) if (Math.abs(x - map[c]) < Math.abs(x - map[best])) best = c;
  if (signed && v > 0 && map[best] < 0) best++;
  if (signed && v < 0 && map[best] >= 0) best--;
  return best;
}

const f = new Float32Array(1);
const b = new Uint32Array(f.buffer);
/** The float32 neighbours of a non-negative float32 (below, above). */
function neighbours(x: number): number[] {
  f[0] = x;
  const bits = b[0];
  const out: number[] = [];
  for (const d of bits > 0 ? [-1, 1] : [1]) {
    b[0] = bits + d;
    out.push(f[0]);
  }
  return out;
}

/** Quotients in [-1, 1]: map values, midpoints (float64 and float32-rounded) and their neighbours, edges, random. */
function inputs(map: Float32Array, signed: boolean): number[] {
  const xs = [0, 1, 1e-45, 1e-40, 1e-38, 1e-20, 1e-9];
  for (let i = 0; i < map.length; i++) {
    const m = Math.abs(map[i]);
    xs.push(m, ...neighbours(m));
    if (i + 1 < map.length) {
      const mid = Math.abs((map[i] + map[i + 1]) / 2);
      const r = Math.fround(mid);
      xs.push(r, ...neighbours(r));
    }
  }
  let s = 777;
  for (let i = 0; i < 4000; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    xs.push(i & 1 ? s / 2 ** 32 : 10 ** (-6 * (s / 2 ** 32)));
  }
  const all = signed ? [...xs, ...xs.map((x) => -x)] : xs;
  return all.map((x) => Math.fround(Math.min(1, Math.max(-1, x))));
}

function padded(values: number[]): Float32Array {
  const out = new Float32Array(Math.ceil(values.length / 4) * 4);
  out.set(values);
  return out;
}

describe('webgpu 4-bit codes', { skip }, () => {
  test('the signed thresholds are the midpoints rounded down (positive) and strictly below them where exact (negative)', () => {
    const { magnitudes, pos, neg } = signedThresholds4();
    assert.deepEqual(magnitudes, Array.from(stateMap4('signed').subarray(7)));
    pos.forEach((t, i) => {
      const mid = (magnitudes[i] + magnitudes[i + 1]) / 2;
      assert.ok(t <= mid && neighbours(t)[1] > mid, `positive threshold ${i}: ${t} vs midpoint ${mid}`);
      assert.ok(neg[i] < mid && neighbours(neg[i])[1] >= mid, `negative threshold ${i}: ${neg[i]} vs midpoint ${mid}`);
    });
  });

  for (const signed of [true, false]) {
    test(`${signed ? 'signed' : 'unsigned'} encoder equals the brute-force nearest code (ties low) on every input`, async () => {
      const map = stateMap4(signed ? 'signed' : 'unsigned');
      const xs = inputs(map, signed);
      const x = padded(xs);
      const got = await run(gpu!.device, signed ? 'encode4s(x, v)' : 'encode4u(x)', x, x);
      xs.forEach((xi, i) => assert.equal(got[i], reference(map, xi, xi, signed), `x=${xi}`));
    });
  }

  test('signed: the sign of the value before scaling decides the nudge (a quotient flushed to 0)', async () => {
    // (x, v): a negative value whose quotient is ±0 takes the smallest negative level; a
    // positive one (and both zeros) the level 0.
    const x = Float32Array.of(0, -0, 0, -0, 0, 0, -0.5, 0.5);
    const v = Float32Array.of(-1e-30, -1e-30, 1e-30, -0, 0, -1e-45, -0.5, 0.5);
    const got = await run(gpu!.device, 'encode4s(x, v)', x, v);
    const map = stateMap4('signed');
    assert.deepEqual(Array.from(got), Array.from(x, (xi, i) => reference(map, xi, v[i], true)));
    assert.deepEqual(Array.from(got.subarray(0, 6)), [6, 6, 7, 7, 7, 6]);
  });

  for (const signed of [true, false]) {
    test(`${signed ? 'signed' : 'unsigned'} decoder: f32(map[code] · absmax), exactly`, async () => {
      const map = stateMap4(signed ? 'signed' : 'unsigned');
      const fn = signed ? 'decode4s' : 'decode4u';
      // Each input vec4 is (codes packed in x's bits, absmax, -, -): decode the four nibbles.
      const cases: [number, number][] = [];
      for (const am of [1, 0.3, 1e-30, 3.4e38, 0]) for (let c = 0; c < 16; c += 4) cases.push([c | ((c + 1) << 4) | ((c + 2) << 8) | ((c + 3) << 12), am]);
      const x = new Float32Array(cases.length * 4);
      const xb = new Uint32Array(x.buffer);
      cases.forEach(([w, am], i) => {
        xb[4 * i] = w;
        x[4 * i + 1] = am;
      });
      const got = new Float32Array((await run(gpu!.device, `bitcast<vec4<u32>>(${fn}(bitcast<u32>(x.x), x.y))`, x, x)).buffer);
      cases.forEach(([w, am], i) => {
        for (let j = 0; j < 4; j++) {
          const want = Math.fround(map[(w >> (4 * j)) & 15] * Math.fround(am));
          assert.equal(got[4 * i + j], want, `code ${(w >> (4 * j)) & 15} absmax ${am}`);
        }
      });
    });
  }
});
