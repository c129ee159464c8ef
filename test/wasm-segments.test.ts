/**
 * The WebAssembly kernel's float32 precision runs whole blocks as segments of one loop call (up
 * to 4096 elements a call, assembly/kernels.ts `run`) and decodes 4-bit codes through a pair
 * table: on tensors of many blocks, every rule's 8- and 4-bit states must still equal the
 * reference kernel's bit for bit, and the parameters agree to float32 rounding, on one thread
 * and on several (chunks that start and end inside a run of blocks).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RULES, type CpuKernel } from '../src/index.js';
import { createWasmKernel, wasmKernelsSupported } from '../src/kernels/cpu/index.js';
import { referenceAndKernel, type Blockwise } from './helpers/kernel-cases.js';

function firstDifference(a: Uint8Array | Uint32Array, b: Uint8Array | Uint32Array): number {
  return a.findIndex((v, j) => v !== b[j]);
}

function run(rule: string, bits: 8 | 4, n: number, blockSize: number, kernel: CpuKernel, seed: number) {
  return referenceAndKernel(rule, { bits, n, blockSize, t: 3, nonFiniteAt: [3, 7000, n - 1], zeroBlock: 5 }, kernel, seed);
}

describe('WebAssembly kernel, float32 precision, runs of blocks', { skip: !wasmKernelsSupported() && 'WebAssembly SIMD/threads unavailable' }, () => {
  const one = createWasmKernel({ threads: 1, precision: 'float32' });
  const three = createWasmKernel({ threads: 3, minParallelSize: 1024, precision: 'float32' });
  for (const rule of Object.keys(RULES)) {
    it(`${rule}: 8- and 4-bit states identical to the reference, parameters to float32 rounding`, async () => {
      await three.ready();
      let seed = 11;
      // 50_013 elements: 390 blocks of 128 (runs of 32) or 195 of 256 (runs of 16) plus a partial one.
      for (const [bits, blockSize] of [[8, 256], [8, 64], [4, 128], [4, 64]] as const) {
        for (const [name, kernel] of [['1 thread', one], ['3 threads', three]] as const) {
          const label = `${rule} ${bits}-bit block ${blockSize} ${name}`;
          const { ref, got, param } = run(rule, bits, 50_000 + 13, blockSize, kernel, seed++);
          ref.states.forEach((x, k) => {
            const a = x as Blockwise;
            const b = got.states[k] as Blockwise;
            const i = firstDifference(new Uint32Array(a.absmax.buffer, a.absmax.byteOffset, a.absmax.length), new Uint32Array(b.absmax.buffer, b.absmax.byteOffset, b.absmax.length));
            assert.equal(i, -1, `${label}: state ${k} absmax[${i}]: reference ${a.absmax[i]}, wasm ${b.absmax[i]}`);
            const j = firstDifference(a.codes, b.codes);
            assert.equal(j, -1, `${label}: state ${k} code byte ${j}: reference ${a.codes[j]}, wasm ${b.codes[j]}`);
          });
          ref.param.forEach((v, i) => {
            const tol = 2 * 2 ** -24 * Math.abs(v) + 8 * 2 ** -24 * Math.abs(v - param[i]) + 1e-38;
            assert.ok(Math.abs(v - got.param[i]) <= tol, `${label} p[${i}]: ${v} vs ${got.param[i]}`);
          });
        }
      }
    });
  }
});
