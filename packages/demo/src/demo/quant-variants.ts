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

/**
 * 4-bit map candidates for the ablation of issue 14 (16 sorted values each; codes are kept one
 * per byte here, which changes no value: the codec packs the same codes two per byte).
 */
export interface Map4Candidate {
  name: string;
  /** The map's values, sorted, in [-1, 1] (signed) or [0, 1] (unsigned). */
  map: Float32Array;
  /** The encoding rule: 'sign' for signed maps (as Blockwise4State), 'none' or 'positive' for unsigned ones. */
  nudge: StateNudge;
}

const f32map = (f: (i: number) => number) => Float32Array.from({ length: 16 }, (_, i) => Math.fround(f(i))).sort();

/** Signed (first-moment) candidates; the first is bitopt's blockwise4 map. */
export function signedMap4Candidates(): Map4Candidate[] {
  return [
    { name: 'DE-16 (3 exponent bits, current)', map: createDynamicMap(true, 3, 4), nudge: 'sign' },
    { name: 'DE-16 (2 exponent bits)', map: createDynamicMap(true, 2, 4), nudge: 'sign' },
    { name: 'linear-16 with zero ((i-7)/8, -0.875…1)', map: f32map((i) => (i - 7) / 8), nudge: 'sign' },
    { name: 'linear-16 without zero (-1 + 2i/15)', map: f32map((i) => -1 + (2 * i) / 15), nudge: 'sign' },
  ];
}

/** Unsigned (second-moment) candidates; the first is bitopt's blockwise4 map. */
export function unsignedMap4Candidates(): Map4Candidate[] {
  const de = createDynamicMap(false, 3, 4); // [0, ..., 1]: 16 values, one of them 0
  return [
    { name: 'zero-free linear (i+1)/16 (current)', map: f32map((i) => (i + 1) / 16), nudge: 'none' },
    { name: 'linear with zero i/15', map: f32map((i) => i / 15), nudge: 'none' },
    { name: 'linear with zero i/15, positive nudge', map: f32map((i) => i / 15), nudge: 'positive' },
    { name: 'DE-16 unsigned (3 exp. bits), positive nudge', map: de, nudge: 'positive' },
    { name: 'DE-16 unsigned without zero (0 → 1e-3)', map: Float32Array.from(de, (x) => (x === 0 ? Math.fround(1e-3) : x)).sort(), nudge: 'none' },
    { name: 'square-root map ((i+1)/16)^2', map: f32map((i) => ((i + 1) / 16) ** 2), nudge: 'none' },
    { name: 'power map ((i+1)/16)^3', map: f32map((i) => ((i + 1) / 16) ** 3), nudge: 'none' },
    { name: 'power map ((i+1)/16)^4', map: f32map((i) => ((i + 1) / 16) ** 4), nudge: 'none' },
  ];
}

/** A state's quantized form under a 4-bit candidate: block-wise absmax, or rank-1 (row and column maxima) for a 2-D tensor. */
export interface Quantized4 {
  codes: Uint8Array;
  /** Block-wise: one absmax per block. */
  absmax?: Float32Array;
  blockSize?: number;
  /** Rank-1: max |x| per row and per column of a rows × cols tensor. */
  rowMax?: Float32Array;
  colMax?: Float32Array;
  /** Float32 control (Layout4.float): the values themselves. */
  values?: Float32Array;
}

export interface Layout4 {
  /** Elements per block (ignored when rank1 applies). */
  blockSize: number;
  /** Rank-1 scale min(rowMax_i, colMax_j) (Li et al. 2023) for 2-D tensors; 1-D ones stay block-wise. */
  rank1?: boolean;
  /** Keep this state in float32 (the ablation's control: quantize only the other state). */
  float?: boolean;
}

/** Quantizes `x` (shape `shape`) with the candidate map and layout. */
export function quantize4(x: Float32Array, shape: readonly number[], c: Map4Candidate, layout: Layout4, into?: Quantized4): Quantized4 {
  if (layout.float) {
    const q = into ?? { codes: new Uint8Array(0), values: new Float32Array(x.length) };
    q.values!.set(x);
    return q;
  }
  if (!(layout.rank1 && shape.length === 2)) {
    const q = quantizeVariant(x, c.map, layout.blockSize, c.nudge, into?.absmax ? (into as Quantized) : undefined);
    return { codes: q.codes, absmax: q.absmax, blockSize: q.blockSize };
  }
  const [rows, cols] = shape;
  const q = into ?? { codes: new Uint8Array(x.length), rowMax: new Float32Array(rows), colMax: new Float32Array(cols) };
  const rowMax = q.rowMax!.fill(0);
  const colMax = q.colMax!.fill(0);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const a = Math.abs(x[i * cols + j]);
      if (a > rowMax[i]) rowMax[i] = a;
      if (a > colMax[j]) colMax[j] = a;
    }
  }
  // Each element is encoded as a one-element block with absmax min(rowMax, colMax) >= |x|.
  const one = new Float32Array(1);
  const code = new Uint8Array(1);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const k = i * cols + j;
      const s = Math.min(rowMax[i], colMax[j]);
      if (s === 0) {
        q.codes[k] = nearestZeroCode(c.map);
        continue;
      }
      one[0] = x[k];
      encodeWithScale(c.map, one, s, code, c.nudge);
      q.codes[k] = code[0];
    }
  }
  return q;
}

export function dequantize4(q: Quantized4, shape: readonly number[], c: Map4Candidate, out: Float32Array): Float32Array {
  if (q.values) {
    out.set(q.values);
    return out;
  }
  if (q.absmax) return dequantizeVariant({ codes: q.codes, absmax: q.absmax, blockSize: q.blockSize! }, c.map, out);
  const cols = shape[1];
  for (let k = 0; k < q.codes.length; k++) out[k] = Math.fround(c.map[q.codes[k]] * Math.min(q.rowMax![(k / cols) | 0], q.colMax![k % cols]));
  return out;
}

/** Bytes of a quantized state at 4 bits per code (packed, as the codec stores them) plus its scales. */
export function bytes4(q: Quantized4): number {
  return (q.values?.byteLength ?? 0) + Math.ceil(q.codes.length / 2) + 4 * ((q.absmax?.length ?? 0) + (q.rowMax?.length ?? 0) + (q.colMax?.length ?? 0));
}

function nearestZeroCode(map: Float32Array): number {
  let best = 0;
  for (let i = 1; i < map.length; i++) if (Math.abs(map[i]) < Math.abs(map[best])) best = i;
  return best;
}

/** The code of x against scale `s` >= |x|: the rule of quantizeBlock on a block [x, s] (nearest of f32(x / s), then the nudge). */
const pair = new Float32Array(2);
const pairCodes = new Uint8Array(2);
function encodeWithScale(map: Float32Array, x: Float32Array, s: number, code: Uint8Array, nudge: StateNudge): void {
  pair[0] = x[0];
  pair[1] = s;
  quantizeBlock(map, pair, 0, 2, pairCodes, 0, nudge);
  code[0] = pairCodes[0];
}
