/**
 * Quantization variants for the ablation: dynamic vs linear maps, block-wise vs tensor-wise.
 * Tensor-wise means one absmax for the whole tensor: quantizeBlockwise caps blocks at 4096
 * elements, so we call the per-block quantizer once over the full length instead.
 */
import { createDynamicMap, createLinearMap, dequantizeBlock, quantizeBlock, type StateNudge } from 'bitopt';

export interface QuantVariant {
  name: string;
  map: 'dynamic' | 'linear';
  /** Elements per block; 0 = tensor-wise (one block spanning the tensor). */
  blockSize: number;
}

export const QUANT_VARIANTS: QuantVariant[] = [
  { name: 'dynamic, block-wise 256 (bitopt default)', map: 'dynamic', blockSize: 256 },
  { name: 'dynamic, block-wise 2048 (paper)', map: 'dynamic', blockSize: 2048 },
  { name: 'dynamic, tensor-wise', map: 'dynamic', blockSize: 0 },
  { name: 'linear, block-wise 256', map: 'linear', blockSize: 256 },
  { name: 'linear, tensor-wise', map: 'linear', blockSize: 0 },
];

const maps = new Map<string, Float32Array>();
export function variantMap(kind: QuantVariant['map'], signed: boolean): Float32Array {
  const key = `${kind}-${signed}`;
  if (!maps.has(key)) maps.set(key, kind === 'dynamic' ? createDynamicMap(signed) : createLinearMap(signed));
  return maps.get(key)!;
}

export interface Quantized {
  codes: Uint8Array;
  absmax: Float32Array;
  blockSize: number;
}

/**
 * Quantizes `x` with the variant. `nudge` is the encoding rule: an optimizer state's own
 * (`stateNudge(sign)`, as Blockwise8State uses) or 'none' for the map's plain nearest code.
 */
export function quantizeVariant(x: Float32Array, map: Float32Array, blockSize: number, nudge: StateNudge, into?: Quantized): Quantized {
  const bs = blockSize > 0 ? blockSize : Math.max(1, x.length);
  const blocks = Math.ceil(x.length / bs);
  const q = into ?? { codes: new Uint8Array(x.length), absmax: new Float32Array(blocks), blockSize: bs };
  for (let b = 0; b < blocks; b++) {
    const start = b * bs;
    q.absmax[b] = quantizeBlock(map, x, start, Math.min(bs, x.length - start), q.codes, start, nudge);
  }
  return q;
}

export function dequantizeVariant(q: Quantized, map: Float32Array, out: Float32Array = new Float32Array(q.codes.length)): Float32Array {
  for (let b = 0; b < q.absmax.length; b++) {
    const start = b * q.blockSize;
    dequantizeBlock(map, q.codes, start, Math.min(q.blockSize, q.codes.length - start), q.absmax[b], out, start);
  }
  return out;
}

/** Error of quantizing `x` and back: relative L2, mean relative error, share of non-zeros zeroed. */
export function quantizationError(x: Float32Array, map: Float32Array, blockSize: number, nudge: StateNudge): { relL2: number; meanRel: number; zeroed: number } {
  const y = dequantizeVariant(quantizeVariant(x, map, blockSize, nudge), map);
  let num = 0;
  let den = 0;
  let rel = 0;
  let nonzero = 0;
  let zeroed = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - y[i];
    num += d * d;
    den += x[i] * x[i];
    if (x[i] !== 0) {
      nonzero++;
      rel += Math.abs(d) / Math.abs(x[i]);
      if (y[i] === 0) zeroed++;
    }
  }
  return { relL2: den > 0 ? Math.sqrt(num / den) : 0, meanRel: nonzero ? rel / nonzero : 0, zeroed: nonzero ? zeroed / nonzero : 0 };
}
