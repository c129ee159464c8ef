/** The MNIST split packed at build time by mnist-asset.ts, decoded in the page. */
import { IMAGE_SIZE } from './model.js';

export interface Digits {
  trainCount: number;
  testCount: number;
  labels: Uint8Array;
  pixels: Uint8Array;
}

export async function loadDigits(url: string): Promise<Digits> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not load ${url}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (String.fromCharCode(...bytes.subarray(0, 4)) !== 'BMN1') throw new Error(`${url} is not a bitopt MNIST pack`);
  const view = new DataView(bytes.buffer);
  const trainCount = view.getUint32(4, true);
  const testCount = view.getUint32(8, true);
  const total = trainCount + testCount;
  return { trainCount, testCount, labels: bytes.subarray(12, 12 + total), pixels: bytes.subarray(12 + total, 12 + total + total * IMAGE_SIZE) };
}

export interface Batch {
  x: Float32Array<ArrayBuffer>;
  labels: Uint8Array;
  rows: number;
}

/** Images at the given absolute indices (train: 0..trainCount-1, then test), scaled to [0, 1]. */
export function gather(d: Digits, indices: ArrayLike<number>): Batch {
  const rows = indices.length;
  const x = new Float32Array(rows * IMAGE_SIZE);
  const labels = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    const i = indices[r];
    labels[r] = d.labels[i];
    const src = d.pixels.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE);
    for (let k = 0; k < IMAGE_SIZE; k++) x[r * IMAGE_SIZE + k] = src[k] / 255;
  }
  return { x, labels, rows };
}
