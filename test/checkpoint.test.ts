import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AdamW8bit, deserializeStateDict, serializeStateDict, type StateDict } from '../src/index.js';
import { crc32 } from '../src/io/crc32.js';
import { loadStateDictFile, saveStateDictFile } from '../src/node/index.js';
import { rng, randn } from './helpers/float64-rules.js';

async function trainedDict(): Promise<StateDict> {
  const rand = rng(9);
  const ps = [randn(5000, rand), randn(100, rand)];
  const opt = new AdamW8bit(ps, { percentileClipping: 95 });
  opt.overrideConfig(ps[1], { lr: 1e-4 });
  for (let t = 0; t < 3; t++) await opt.step(ps.map((p) => randn(p.length, rand)));
  return opt.stateDict();
}

/** Re-seals `bytes` with a correct checksum (to test the checks behind the CRC). */
function reseal(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer).setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

describe('checkpoint bytes', () => {
  it('crc32 matches the standard check value', () => {
    assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  });

  it('round-trips a state dict bit-exactly and loads into a fresh optimizer', async () => {
    const dict = await trainedDict();
    const back = deserializeStateDict(serializeStateDict(dict));
    assert.deepEqual(back, dict);
    const opt = new AdamW8bit([new Float32Array(5000), new Float32Array(100)], { percentileClipping: 95 });
    opt.loadStateDict(back);
    assert.deepEqual(opt.stateDict(), dict);
  });

  it('rejects every truncation and every single bit flip', async () => {
    const bytes = serializeStateDict(await trainedDict());
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), (cut) => {
        assert.throws(() => deserializeStateDict(bytes.slice(0, cut)), /deserializeStateDict: (truncated|checksum mismatch|not a bitopt)/);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), (bit) => {
        const damaged = bytes.slice();
        damaged[bit >> 3] ^= 1 << (bit & 7);
        assert.throws(() => deserializeStateDict(damaged), /deserializeStateDict: /);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects wrong magic, wrong version and oversized counts even with a valid checksum', async () => {
    const bytes = serializeStateDict(await trainedDict());
    const magic = bytes.slice();
    magic[0] = 'X'.charCodeAt(0);
    assert.throws(() => deserializeStateDict(reseal(magic)), /bad magic/);
    const version = bytes.slice();
    new DataView(version.buffer).setUint32(8, 7, true);
    assert.throws(() => deserializeStateDict(reseal(version)), /unsupported checkpoint version 7/);
    // Claim 999 instead of 100 elements for the last array (the same number of digits, so the
    // layout stays put): a count that runs past the data must be refused, not read.
    const headerLength = new DataView(bytes.buffer).getUint32(12, true);
    const header = new TextDecoder().decode(bytes.subarray(16, 16 + headerLength));
    const last = header.lastIndexOf('"length":100}');
    assert.ok(last > 0, 'the last array is a 100-entry clipping history');
    const oversized = bytes.slice();
    oversized.set(new TextEncoder().encode('"length":999}'), 16 + last);
    assert.throws(() => deserializeStateDict(reseal(oversized)), /array of 999 Float64Array at \d+ runs past the end of the data/);
  });
});

describe('checkpoint files', () => {
  it('save writes atomically, load restores, and damaged files are rejected', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bitopt-'));
    const path = join(dir, 'opt.ckpt');
    const dict = await trainedDict();
    await saveStateDictFile(path, dict);
    assert.deepEqual(await loadStateDictFile(path), dict);
    assert.deepEqual(await readdir(dir), ['opt.ckpt'], 'no temporary file left behind');
    // A save interrupted half-way leaves at most a partial temporary file; the checkpoint stays valid.
    const full = await readFile(path);
    await writeFile(join(dir, '.opt.ckpt.1.2.tmp'), full.subarray(0, full.length >> 1));
    assert.deepEqual(await loadStateDictFile(path), dict);
    // A truncated checkpoint (e.g. copied half-way) never loads as valid.
    await writeFile(path, full.subarray(0, full.length - 100));
    await assert.rejects(loadStateDictFile(path), /checksum mismatch|truncated/);
  });
});
