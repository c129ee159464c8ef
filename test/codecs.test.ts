import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam8bit, createDynamicMap, createLinearMap, type StateDict } from '../src/index.js';
import { blockwise4Codec, blockwise8Codec, CODECS, codecForBits, codecOf, float32Codec, type StateStore } from '../src/codecs/index.js';

/** A checkpoint of an 8-bit Adam after two steps (m signed, v unsigned). */
async function adamDict(): Promise<{ opt: Adam8bit; dict: StateDict }> {
  const p = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i));
  const opt = new Adam8bit([p], { lr: 1e-2 });
  for (let t = 0; t < 2; t++) await opt.step([Float32Array.from(p, (x) => x + 0.1)]);
  return { opt, dict: opt.stateDict() };
}

describe('state codecs', () => {
  it('optimBits selects the codec; each store knows its codec; bytes agree with the stores', () => {
    assert.equal(codecForBits(8), blockwise8Codec);
    assert.equal(codecForBits(32), float32Codec);
    assert.equal(codecForBits(4), blockwise4Codec);
    assert.throws(() => codecForBits(16), /no state codec stores 16 bits \(have 32, 8, 4\)/);
    for (const codec of Object.values(CODECS)) {
      for (const [n, bs] of [[1, 64], [4097, 256], [10000, 4096]]) {
        const s = codec.create('signed', n, bs);
        assert.equal(codecOf(s), codec);
        assert.equal(s.bytes, codec.bytes(n, bs), `${codec.format} n=${n}`);
      }
    }
    assert.equal(blockwise8Codec.bytes(4097, 256), 4097 + 4 * 17);
    assert.equal(blockwise4Codec.bytes(4097, 128), 2049 + 4 * 33);
    assert.deepEqual(Object.values(CODECS).map((c) => [c.format, c.defaultBlockSize]), [['float32', 256], ['blockwise8', 256], ['blockwise4', 128]]);
    assert.throws(() => codecOf({ format: 'blockwise4' } as unknown as StateStore), /state format 'blockwise4' has no codec/);
    assert.throws(() => codecOf({ format: 'blockwise2' } as unknown as StateStore), /state format 'blockwise2' has no codec/);
  });

  it('a zero state decodes to zeros and a block round-trips through encode/decode within the map step', () => {
    for (const codec of Object.values(CODECS)) {
      const s = codec.create('signed', 300, 256);
      const out = new Float32Array(256);
      s.load(0, 256, out);
      assert.ok(out.every((v) => v === 0));
      const x = Float32Array.from({ length: 44 }, (_, i) => Math.cos(i) * 3);
      s.store(256, 44, x.slice());
      const y = new Float32Array(44);
      s.load(256, 44, y);
      // Within half the map's widest gap, or the distance from its ends to ±1, times the absmax (3).
      const map = (s as unknown as { map?: Float32Array }).map;
      let step = 0;
      if (map) {
        step = Math.max(1 + map[0], 1 - map[map.length - 1]);
        for (let c = 1; c < map.length; c++) step = Math.max(step, (map[c] - map[c - 1]) / 2);
      }
      for (let i = 0; i < 44; i++) assert.ok(Math.abs(y[i] - x[i]) <= step * 3 * (1 + 1e-6), `${codec.format} ${i}: ${y[i]} vs ${x[i]}`);
    }
  });

  it('a checkpoint whose map does not fit its state sign is rejected, naming the state (it would give NaN or flipped momentum)', async () => {
    const { opt, dict } = await adamDict();
    const before = opt.stateDict();
    const [m, v] = dict.tensors[0].states;
    assert.ok(m.format === 'blockwise8' && v.format === 'blockwise8');
    const withMap = (k: number, map: Float32Array) => {
      const d = structuredClone(dict);
      (d.tensors[0].states[k] as { map: Float32Array }).map = map;
      return d;
    };
    assert.throws(() => opt.loadStateDict(withMap(1, createDynamicMap(true))), /tensor 0\.states\[1\]\.map: the map of an unsigned state has a negative value/);
    assert.throws(() => opt.loadStateDict(withMap(0, createDynamicMap(false))), /tensor 0\.states\[0\]\.map: the map of a signed state must span negative and positive values/);
    assert.throws(() => opt.loadStateDict(withMap(0, createLinearMap(false))), /signed state must span/);
    // Nothing changed, and a fitting custom map still loads.
    assert.deepEqual(opt.stateDict(), before);
    opt.loadStateDict(withMap(0, createLinearMap(true)));
  });

  it('a tensor whose states mix formats or an unknown format is rejected', async () => {
    const { opt, dict } = await adamDict();
    const mixed = structuredClone(dict);
    mixed.tensors[0].states[1] = { format: 'float32', sign: 'unsigned', values: new Float32Array(5000) };
    assert.throws(() => opt.loadStateDict(mixed), /share one format, got blockwise8 and float32/);
    const unknown = structuredClone(dict);
    (unknown.tensors[0].states[0] as { format: string }).format = 'constructor';
    assert.throws(() => opt.loadStateDict(unknown), /unknown state format "constructor"/);
  });
});
