/**
 * The exact encode tables (src/kernels/webgpu/code-tables.ts) against the reference encode
 * (`nearestCode` + the state nudge) on the CPU: every interval's ends, every threshold and its
 * neighbours, and a sweep over the float32 bit patterns of [0, 1]. (The WGSL side is not yet
 * wired; this pins the tables it will read.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createDynamicMap, nearestCode } from '../src/index.js';
import { buildCodeTables, floatOfBits, lookupCode } from '../src/kernels/webgpu/code-tables.js';

const s = createDynamicMap(true);
const u = createDynamicMap(false);
// Reference codes of a magnitude: signed positive, signed negative (sign nudge), unsigned (nearest only; the positive nudge sees the unscaled value).
const fns = [
  (b: number) => nearestCode(s, floatOfBits(b)),
  (b: number) => {
    const q = -floatOfBits(b);
    const c = nearestCode(s, q);
    return s[c] >= 0 ? c - 1 : c; // x < 0: the sign nudge
  },
];
const fu = [(b: number) => nearestCode(u, floatOfBits(b))];

describe('webgpu exact encode tables', () => {
  for (const [name, fs] of [['signed (positive and negative)', fns], ['unsigned', fu]] as const) {
    test(`${name}: equal to the reference at every threshold, interval end and a bit-pattern sweep`, () => {
      const t = buildCodeTables(fs);
      const intervals = t.l2.length / 2 / fs.length;
      fs.forEach((f, fi) => {
        const probes: number[] = [0, 1, 0x3f800000, 0x3f7fffff, 0x00800000];
        for (let i = 0; i < intervals; i++) {
          const thr = t.l2[2 * (fi * intervals + i) + 1];
          if (thr !== 0xffffffff) for (let d = -2; d <= 2; d++) probes.push(thr + d);
        }
        for (let b = 0; b <= 0x3f800000; b += 4093) probes.push(b);
        for (const b of probes) {
          if (b < 0 || b > 0x3f800000) continue;
          assert.equal(lookupCode(t, fi, intervals, b), f(b), `fn ${fi}, a = ${floatOfBits(b)} (bits ${b.toString(16)})`);
        }
      });
      assert.ok(t.l2.length / 2 < 2048, `${t.l2.length / 2} intervals fit workgroup memory`);
    });
  }
});
