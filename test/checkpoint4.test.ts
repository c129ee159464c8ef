/**
 * Checkpoints with 4-bit states: bit-exact round trips (object and bytes), version-1 dicts
 * (float32 and blockwise8 only) still load, and hostile 4-bit fields are rejected with nothing
 * changed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam4bit, Adam8bit, deserializeStateDict, serializeStateDict, STATE_DICT_VERSION, type StateDict } from '../src/index.js';
import { randn, rng } from './helpers/float64-rules.js';

async function trained(n = 5001, steps = 3) {
  const rand = rng(4);
  const p = randn(n, rand);
  const opt = new Adam4bit([p], { lr: 1e-2 });
  for (let t = 0; t < steps; t++) await opt.step([randn(n, rand, 0.1)]);
  return { opt, p, rand };
}

describe('4-bit checkpoints', () => {
  it('round-trip bit-exactly through stateDict and the byte format; the next steps are identical', async () => {
    const { opt, p, rand } = await trained();
    const dict = opt.stateDict();
    assert.equal(dict.version, STATE_DICT_VERSION);
    assert.equal(STATE_DICT_VERSION, 2);
    const bytes = serializeStateDict(dict);
    const back = deserializeStateDict(bytes);
    assert.deepEqual(back, dict);
    const q = p.slice();
    const other = new Adam4bit([q], { lr: 1e-2 });
    other.loadStateDict(back);
    assert.deepEqual(other.stateDict(), dict);
    const g = randn(p.length, rand, 0.1);
    await opt.step([g]);
    await other.step([g]);
    assert.deepEqual(q, p);
    assert.deepEqual(other.stateDict(), opt.stateDict());
  });

  it('a version-1 dict (float32 and blockwise8 states) still loads; a version-1 dict cannot hold 4-bit states', async () => {
    const n = 5000;
    const rand = rng(6);
    const a = new Adam8bit([randn(n, rand)]);
    await a.step([randn(n, rand, 0.1)]);
    // What the build before version 2 wrote: the same fields, version 1, blockSize in the options.
    const v1 = { ...a.stateDict(), version: 1 } as StateDict;
    v1.groups[0].options.blockSize = 256;
    const b = new Adam8bit([new Float32Array(n)]);
    b.loadStateDict(deserializeStateDict(serializeStateDict(v1)));
    assert.deepEqual(b.stateDict().tensors, a.stateDict().tensors);
    const { opt } = await trained();
    const bad = { ...opt.stateDict(), version: 1 } as StateDict;
    assert.throws(() => new Adam4bit([new Float32Array(5001)]).loadStateDict(bad), /state format 'blockwise4' does not exist in version 1 state dicts/);
    assert.throws(() => new Adam4bit([new Float32Array(5001)]).loadStateDict({ ...opt.stateDict(), version: 3 } as StateDict), /unsupported state dict version 3/);
  });

  it('rejects hostile 4-bit fields, naming them, and changes nothing', async () => {
    const { opt } = await trained();
    const good = opt.stateDict();
    const target = new Adam4bit([new Float32Array(5001)]);
    const before = target.stateDict();
    const edit = (k: number, f: (s: Record<string, unknown>) => void) => {
      const d = structuredClone(good);
      f(d.tensors[0].states[k] as unknown as Record<string, unknown>);
      return d;
    };
    const cases: [StateDict, RegExp][] = [
      [edit(0, (s) => (s.map = new Float32Array(15))), /states\[0\]: map must have 16 values, got 15/],
      [edit(0, (s) => (s.map = new Float32Array(256))), /map must have 16 values, got 256/],
      [edit(0, (s) => ((s.map as Float32Array).reverse())), /not sorted ascending/],
      [edit(0, (s) => ((s.map as Float32Array)[15] = NaN)), /outside \[-1, 1\]/],
      [edit(0, (s) => ((s.map as Float32Array)[15] = 2)), /outside \[-1, 1\]/],
      [edit(1, (s) => ((s.map as Float32Array)[0] = -0.5)), /states\[1\]\.map: the 4-bit map of an unsigned state must have no value <= 0/],
      [edit(1, (s) => ((s.map as Float32Array)[0] = 0)), /must have no value <= 0/],
      [edit(0, (s) => (s.map = Float32Array.from({ length: 16 }, (_, i) => (i + 1) / 16))), /signed state must span negative and positive/],
      [edit(0, (s) => (s.codes = new Uint8Array(2500))), /states\[0\]\.codes: expected 2501 values, got 2500/],
      [edit(0, (s) => (s.codes = new Uint8Array(2502))), /expected 2501 values, got 2502/],
      [edit(0, (s) => (s.codes = new Uint16Array(2501))), /expected a Uint8Array, got Uint16Array/],
      [edit(1, (s) => ((s.codes as Uint8Array)[2500] |= 0x30)), /unused high nibble of the last byte must be 0 .*odd length 5001.*got 3/],
      [edit(1, (s) => ((s.absmax as Float32Array)[3] = NaN)), /states\[1\]\.absmax: value 3 is NaN/],
      [edit(1, (s) => ((s.absmax as Float32Array)[0] = -1)), /absmax: value 0 is -1/],
      [edit(1, (s) => ((s.absmax as Float32Array)[0] = Infinity)), /absmax: value 0 is Infinity/],
      [edit(0, (s) => (s.blockSize = 100)), /blockSize must be a power of two in \[64, 4096\], got 100/],
      [edit(0, (s) => (s.blockSize = 8192)), /power of two/],
      [edit(0, (s) => (s.blockSize = 256)), /absmax: expected 20 values, got 40|block-wise states must share one block size/],
      [edit(0, (s) => (s.sign = 'unsigned')), /sign must be 'signed'/],
      [edit(0, (s) => (s.format = 'blockwise16')), /unknown state format "blockwise16"/],
    ];
    for (const [d, re] of cases) {
      assert.throws(() => target.loadStateDict(d), re);
      assert.deepEqual(target.stateDict(), before, `nothing changed after ${re}`);
    }
    // Mixed formats in one tensor are refused as for 8-bit.
    const mixed = structuredClone(good);
    const eight = new Adam8bit([new Float32Array(5001)]);
    await eight.step([new Float32Array(5001).fill(0.1)]);
    mixed.tensors[0].states[1] = eight.stateDict().tensors[0].states[1];
    assert.throws(() => target.loadStateDict(mixed), /share one format/);
  });
});
