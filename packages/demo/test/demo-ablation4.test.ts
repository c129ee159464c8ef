/**
 * The 4-bit ablation's building blocks (issue 14): VariantAdam4 with bitopt's blockwise4 maps
 * reproduces Adam4bit bit for bit, the candidate maps are what their names say, and the rank-1
 * scale is min(row max, column max) as in Li et al. 2023.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam4bit, createReferenceKernel, stateMap4 } from 'bitopt';
import { dequantize4, quantize4, signedMap4Candidates, unsignedMap4Candidates } from '../src/demo/quant-variants.js';
import { Rng } from '../src/demo/rng.js';
import { VariantAdam4 } from '../src/demo/variant-adam.js';

const randomArray = (rng: Rng, n: number, scale = 1) => Float32Array.from({ length: n }, () => rng.normal() * scale);

describe('demo 4-bit ablation', () => {
  it('the first candidates are the codec maps', () => {
    assert.deepEqual(signedMap4Candidates()[0].map, stateMap4('signed'));
    assert.deepEqual(unsignedMap4Candidates()[0].map, stateMap4('unsigned'));
    for (const c of [...signedMap4Candidates(), ...unsignedMap4Candidates()]) {
      assert.equal(c.map.length, 16, c.name);
      for (let i = 1; i < 16; i++) assert.ok(c.map[i] > c.map[i - 1], `${c.name} sorted and distinct`);
    }
    const sqrt = unsignedMap4Candidates().find((c) => c.name.startsWith('square-root'))!;
    assert.equal(sqrt.map[0], Math.fround(1 / 256));
    assert.equal(sqrt.map[15], 1);
  });

  it('VariantAdam4 with the codec maps and blocks of 128 equals Adam4bit bit for bit', async () => {
    const rng = new Rng(7);
    const sizes = [5000, 300, 4096 + 17];
    const a = sizes.map((n) => randomArray(rng, n, 0.1));
    const b = a.map((p) => p.slice());
    const ref = new Adam4bit(a, { lr: 1e-2 });
    ref.setKernel(createReferenceKernel());
    const [m, v] = [signedMap4Candidates()[0], unsignedMap4Candidates()[0]];
    const mine = new VariantAdam4(b, sizes.map((n) => [n]), { name: 'current', m, v, mLayout: { blockSize: 128 }, vLayout: { blockSize: 128 } }, { lr: 1e-2 });
    for (let step = 0; step < 6; step++) {
      const grads = sizes.map((n) => randomArray(rng, n, step % 2 ? 1e-3 : 1));
      await ref.step(grads);
      mine.step(grads);
    }
    a.forEach((p, i) => assert.deepEqual(b[i], p, `tensor ${i}`));
    assert.equal(mine.stateBytes(), ref.stateBytes());
  });

  it('rank-1 scales each element by min(row max, column max)', () => {
    // 2 × 3: row maxima 4, 0.5; column maxima 4, 0.5, 0.25.
    const x = Float32Array.from([4, 0.25, 0.25, 0.5, 0.5, 0.125]);
    const v = unsignedMap4Candidates()[0]; // (i+1)/16
    const q = quantize4(x, [2, 3], v, { blockSize: 128, rank1: true });
    assert.deepEqual(Array.from(q.rowMax!), [4, 0.5]);
    assert.deepEqual(Array.from(q.colMax!), [4, 0.5, 0.25]);
    const y = dequantize4(q, [2, 3], v, new Float32Array(6));
    // Scales: [4, 0.5, 0.25; 0.5, 0.5, 0.25]; x / scale = [1, 0.5, 1; 1, 1, 0.5], all on the grid.
    assert.deepEqual(Array.from(y), Array.from(x));
    // Block-wise with one absmax of 4: 0.125 / 4 = 1/32 is below the first level 1/16.
    const blk = dequantize4(quantize4(x, [2, 3], v, { blockSize: 128 }), [2, 3], v, new Float32Array(6));
    assert.equal(blk[5], 0.25);
  });
});
