/**
 * GPU block-wise quantize/dequantize against the CPU quantizeBlockwise/dequantizeBlockwise:
 * dynamic (signed, unsigned) and linear maps, partial blocks, a partial last vec4, all-zero
 * blocks, several block sizes, and chunking under a forced small binding limit.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createDynamicMap, createLinearMap, dequantizeBlockwise, quantizeBlockwise } from '../src/index.js';
import { createGpuTensor, readGpuTensor } from '../src/kernels/webgpu/device.js';
import { requestNodeDevice } from '../src/kernels/webgpu/node.js';
import { dequantizeBlockwiseGpu, quantizeBlockwiseGpu, readQuantized } from '../src/kernels/webgpu/quantize.js';
import './helpers/swiftshader.js';

const gpu = await requestNodeDevice().catch(() => null);
const skip = gpu ? false : 'no WebGPU adapter (install chromium for SwiftShader, see docs/architecture.md §5)';

function data(n: number, seed: number, signed: boolean, blockSize: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const mag = 10 ** (-8 * (s / 2 ** 32));
    s = (s * 1664525 + 1013904223) >>> 0;
    x[i] = (signed && s & 1 ? -1 : 1) * mag * 3;
  }
  x.fill(0, blockSize, 2 * blockSize); // an all-zero block
  return x;
}

describe('webgpu quantize/dequantize vs the CPU', { skip }, () => {
  const cases: [string, Float32Array, boolean, number, number, number?][] = [
    ['dynamic signed', createDynamicMap(true), true, 256, 5003],
    ['dynamic unsigned', createDynamicMap(false), false, 64, 3001],
    ['linear signed', createLinearMap(true), true, 2048, 9002],
    ['dynamic signed, 4096 blocks', createDynamicMap(true), true, 4096, 20001],
    ['dynamic signed, chunked (4 chunks of 16 tiles)', createDynamicMap(true), true, 128, 50001, 65536],
  ];
  for (const [name, map, signed, blockSize, n, maxBindingBytes] of cases) {
    test(`${name}, blockSize ${blockSize}, n=${n}`, async () => {
      const device = gpu!.device;
      const x = data(n, n, signed, blockSize);
      const want = quantizeBlockwise(x, { map, blockSize });
      const xt = createGpuTensor(device, x);
      const q = await quantizeBlockwiseGpu(device, xt, { map, blockSize, maxBindingBytes });
      const got = await readQuantized(device, q);
      assert.deepEqual(got.absmax, want.absmax, 'absmax');
      let ties = 0;
      for (let i = 0; i < n; i++) {
        if (got.codes[i] === want.codes[i]) continue;
        // Only a (near-)tie may differ: both codes equally near x/absmax.
        const a = want.absmax[Math.floor(i / blockSize)];
        const v = x[i] / a;
        assert.ok(Math.abs(Math.abs(v - map[got.codes[i]]) - Math.abs(v - map[want.codes[i]])) <= 1e-6 * Math.abs(v) + 1e-12, `code ${i}: gpu ${got.codes[i]} cpu ${want.codes[i]} for ${v}`);
        ties++;
      }
      assert.ok(ties <= n * 1e-3, `${ties} ties`);
      // Dequantize the CPU's codes on the GPU: exactly map[code] * absmax.
      const padded = new Uint8Array(Math.ceil(n / 4) * 4);
      padded.set(want.codes);
      device.queue.writeBuffer(q.codes, 0, padded);
      const y = await readGpuTensor(device, await dequantizeBlockwiseGpu(device, q, map));
      assert.deepEqual(y, dequantizeBlockwise(want.codes, want.absmax, { map, blockSize }));
      for (const b of [xt.buffer, q.codes, q.absmax]) b.destroy();
    });
  }
  test('bad input throws', async () => {
    const device = gpu!.device;
    const xt = createGpuTensor(device, 16);
    await assert.rejects(quantizeBlockwiseGpu(device, xt, { map: new Float32Array(3) }), /map must have 256 values/);
    await assert.rejects(quantizeBlockwiseGpu(device, xt, { map: createDynamicMap(), blockSize: 100 }), /blockSize must be a power of two/);
    xt.buffer.destroy();
  });
});
