/**
 * The 4-bit codec (src/codecs/blockwise4.ts, docs/architecture.md §1.5): the two maps against
 * values derived by hand, the encoder against a brute-force nearest search, packing, partial
 * and all-zero blocks, tiny values, and the codec's sizes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam4bit, AdamW4bit, blockwise4Codec, Blockwise4State, stateMap4 } from '../src/index.js';
import { codeAt } from '../src/codecs/index.js';
import { rng } from './helpers/float64-rules.js';

const f = Math.fround;

describe('4-bit maps', () => {
  it('signed: the dynamic map with 3 exponent bits, derived by hand', () => {
    // createDynamicMap(true, E = 3, B = 4), S = B - 1 = 3 (docs/architecture.md §1.1):
    //   i = 0: k = 2^(0+3-3) + 1 = 2 boundaries linspace(0.1, 1, 2) = [0.1, 1];
    //          midpoint f32(f32(0.1 + 1) / 2) = 0.55, times f32(1e-2): 0.0055
    //   i = 1: k = 3: step f32(f32(1 - 0.1) / 2) = 0.45, boundaries [0.1, f32(1 - 0.45) = 0.55, 1];
    //          midpoints 0.325, 0.775, times f32(1e-1): 0.0325, 0.0775
    //   i = 2: k = 5: step f32(0.9 / 4) = 0.225, boundaries [0.1, 0.325, 0.55, 0.775, 1]
    //          (first two count up from 0.1, the rest down from 1); midpoints 0.2125, 0.4375,
    //          0.6625, 0.8875, times 1
    //   additional = 2^(S-E) - 1 = 0; then 0 and 1: 7 negatives, 0, 7 positives, 1 = 16 values.
    const b = (x: number) => f(x);
    const mid = (lo: number, hi: number) => f(f(lo + hi) / 2);
    const step1 = f(f(1 - b(0.1)) / 2);
    const step2 = f(f(1 - b(0.1)) / 4);
    const e1 = [0.1, f(1 - step1), 1].map(b);
    const e2 = [b(0.1), f(b(0.1) + step2), f(1 - f(step2 * 2)), f(1 - step2), 1];
    const pos = [
      f(f(1e-2) * mid(b(0.1), 1)),
      f(f(1e-1) * mid(e1[0], e1[1])),
      f(f(1e-1) * mid(e1[1], e1[2])),
      ...[0, 1, 2, 3].map((j) => f(1 * mid(e2[j], e2[j + 1]))),
    ];
    const expected = Float32Array.from([...pos.map((v) => -v).reverse(), 0, ...pos, 1]);
    assert.deepEqual(stateMap4('signed'), expected);
    // As decimals ±{0.0055, 0.0325, 0.0775, 0.2125, 0.4375, 0.6625, 0.8875}: the float32 rounding of
    // each intermediate leaves 0.0325 and 0.2125 one float32 step off the nearest float32 of the decimal.
    [0.0055, 0.0325, 0.0775, 0.2125, 0.4375, 0.6625, 0.8875].forEach((d, j) => assert.ok(Math.abs(pos[j] - d) <= 2 ** -24 * d * 2, `${pos[j]} vs ${d}`));
    assert.equal(stateMap4('signed').indexOf(0), 7, 'the zero level is code 7');
  });

  it('unsigned: the zero-free linear map (i + 1) / 16', () => {
    const m = stateMap4('unsigned');
    assert.equal(m.length, 16);
    for (let i = 0; i < 16; i++) assert.equal(m[i], (i + 1) / 16);
    assert.ok(m[0] > 0, 'no zero level');
  });
});

/** Brute force: the index of the nearest map value, lowest on ties. */
function bruteNearest(map: Float32Array, q: number): number {
  let best = 0;
  for (let c = 1; c < map.length; c++) if (Math.abs(q - map[c]) < Math.abs(q - map[best])) best = c;
  return best;
}

/** Expected codes of one block, written from the contract (not from the codec). */
function expectedCodes(x: Float32Array, sign: 'signed' | 'unsigned'): { codes: number[]; absmax: number } {
  const map = stateMap4(sign);
  const absmax = f(x.reduce((m, v) => Math.max(m, Math.abs(v)), 0));
  const codes = Array.from(x, (v) => {
    if (absmax === 0) return bruteNearest(map, 0);
    let c = bruteNearest(map, f(v / absmax));
    if (sign === 'signed' && v > 0 && map[c] < 0) c += 1;
    if (sign === 'signed' && v < 0 && map[c] >= 0) c -= 1;
    return c;
  });
  return { codes, absmax };
}

describe('4-bit encode and decode', () => {
  for (const sign of ['signed', 'unsigned'] as const) {
    it(`${sign}: codes equal a brute-force nearest search (random, partial blocks, odd lengths)`, () => {
      const rand = rng(sign === 'signed' ? 1 : 2);
      for (const [n, blockSize] of [[1000, 128], [129, 128], [63, 64], [4097, 4096], [1, 64]]) {
        const s = blockwise4Codec.create(sign, n, blockSize);
        assert.equal(s.codes.length, Math.ceil(n / 2));
        assert.equal(s.absmax.length, Math.ceil(n / blockSize));
        const x = Float32Array.from({ length: n }, () => {
          const v = (rand() - (sign === 'signed' ? 0.5 : 0)) * 10 ** (-6 * rand());
          return rand() < 0.05 ? 0 : v;
        });
        for (let start = 0; start < n; start += blockSize) {
          const len = Math.min(blockSize, n - start);
          const block = x.slice(start, start + len);
          s.store(start, len, block.slice());
          const e = expectedCodes(block, sign);
          assert.equal(s.absmax[start / blockSize], e.absmax);
          for (let j = 0; j < len; j++) assert.equal(codeAt(s.codes, start + j), e.codes[j], `n=${n} element ${start + j}: x=${block[j]}`);
          const out = new Float32Array(len);
          s.load(start, len, out);
          for (let j = 0; j < len; j++) assert.equal(out[j], f(stateMap4(sign)[e.codes[j]] * e.absmax));
        }
        // Packing: element i in byte i >> 1, low nibble for even i; the unused last nibble is 0.
        for (let i = 0; i < n; i++) assert.equal(i & 1 ? s.codes[i >> 1] >> 4 : s.codes[i >> 1] & 15, codeAt(s.codes, i));
        if (n & 1) assert.equal(s.codes[s.codes.length - 1] >> 4, 0, 'unused high nibble');
      }
    });

    it(`${sign}: a zero state and an all-zero block decode to exactly 0`, () => {
      const s = blockwise4Codec.create(sign, 301, 128);
      const zero = sign === 'signed' ? 7 : 0;
      for (let i = 0; i < 301; i++) assert.equal(codeAt(s.codes, i), zero);
      assert.equal(s.codes[150] >> 4, 0, 'the last byte of an odd length keeps its high nibble 0');
      s.store(128, 128, Float32Array.from({ length: 128 }, (_, j) => (j % 3) * 0.1));
      s.store(128, 128, new Float32Array(128));
      const out = new Float32Array(128).fill(NaN);
      s.load(128, 128, out);
      assert.ok(out.every((v) => Object.is(v, 0)), 'all-zero block decodes to +0');
      assert.equal(s.absmax[1], 0);
    });
  }

  it('unsigned: a positive value never decodes to 0 (the map has no zero level)', () => {
    const s = blockwise4Codec.create('unsigned', 128, 128);
    const x = new Float32Array(128);
    x[0] = 1;
    for (let j = 1; j < 128; j++) x[j] = f(10 ** (-j / 4)); // down to 1e-32 of the block's max
    s.store(0, 128, x.slice());
    const out = new Float32Array(128);
    s.load(0, 128, out);
    for (let j = 0; j < 128; j++) assert.ok(out[j] >= 1 / 16, `x=${x[j]} decoded to ${out[j]}`);
  });

  it('signed: tiny values keep their sign as the 8-bit sign rule does', () => {
    const s = blockwise4Codec.create('signed', 64, 64);
    const x = new Float32Array(64);
    x[0] = 1;
    x[1] = -1e-20;
    x[2] = 1e-20;
    s.store(0, 64, x.slice());
    const out = new Float32Array(64);
    s.load(0, 64, out);
    assert.equal(out[1], f(-0.0055), 'a tiny negative value takes the smallest negative level');
    assert.equal(out[2], 0, 'a tiny positive value may round to 0 (0 is not of the opposite sign)');
  });

  it('an overflowing state saturates at the largest float32', () => {
    const s = blockwise4Codec.create('unsigned', 64, 64);
    const x = new Float32Array(64).fill(1);
    x[5] = Infinity;
    s.store(0, 64, x);
    assert.equal(s.absmax[0], 3.4028234663852886e38);
    assert.equal(codeAt(s.codes, 5), 15);
  });
});

describe('4-bit sizes', () => {
  it('Adam4bit state bytes: 2·(n/2 + 4·ceil(n/128)) at the default block of 128, at most 1.07 B/param', async () => {
    const n = 2 ** 20 + 6;
    const opt = new Adam4bit([new Float32Array(n)]);
    await opt.step([new Float32Array(n).fill(1e-3)]);
    assert.equal(opt.stateBytes(), 2 * (n / 2 + 4 * Math.ceil(n / 128)));
    assert.ok(opt.stateBytes() / n <= 1.07, `${opt.stateBytes() / n} B/param`);
    const states = opt.stateDict().tensors[0].states;
    assert.ok(states.every((s) => s.format === 'blockwise4' && s.blockSize === 128));
  });

  it('blockSize, min8bitSize and per-parameter overrides apply as in 8 bits', async () => {
    const big = new Float32Array(5000);
    const small = new Float32Array(100);
    const emb = new Float32Array(6000);
    const opt = new AdamW4bit([big, small, emb], { blockSize: 256 });
    opt.overrideConfig(emb, { optimBits: 8 });
    await opt.step([big, small, emb].map((p) => new Float32Array(p.length).fill(0.1)));
    const t = opt.stateDict().tensors;
    assert.deepEqual(t.map((x) => x.states[0].format), ['blockwise4', 'float32', 'blockwise8']);
    assert.equal((t[0].states[0] as { blockSize: number }).blockSize, 256);
    assert.equal((t[2].states[0] as { blockSize: number }).blockSize, 256, 'the given blockSize applies to 8 bits too');
    const byDefault = new Adam4bit([new Float32Array(5000)]);
    byDefault.overrideConfig(byDefault.params[0], { optimBits: 8 as never });
    await byDefault.step([new Float32Array(5000).fill(0.1)]);
    assert.equal((byDefault.stateDict().tensors[0].states[0] as { blockSize: number }).blockSize, 256, '8-bit keeps its own default block');
    assert.ok(new Blockwise4State('signed', 64, stateMap4('signed'), new Uint8Array(2), new Float32Array(1), 3).bytes === 6);
  });

  it('optimBits accepts 4, 8 and 32 only, naming them', () => {
    assert.throws(() => new Adam4bit([new Float32Array(8)], { optimBits: 2 as never }), /optimBits must be 4, 8 or 32, got 2/);
  });
});
