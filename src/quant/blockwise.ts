/**
 * Block-wise quantization (docs/architecture.md §1.2): each block of `blockSize` elements stores one
 * float32 absmax and one 8-bit code per element, the index of the map value nearest x/absmax.
 * This is the readable reference; the optimizer kernels call the per-block helpers below.
 */
import { validateMap } from './maps.js';

/** Smallest accepted block size (elements). */
export const MIN_BLOCK_SIZE = 64;
/** Largest accepted block size (elements). */
export const MAX_BLOCK_SIZE = 4096;

/** Options of `quantizeBlockwise`. */
export interface BlockwiseOptions {
  /** The quantization map (256 sorted float32 values), e.g. `createDynamicMap(true)`. */
  map: Float32Array;
  /** Elements per block: a power of two in [64, 4096]. Default 2048. */
  blockSize?: number;
}

/** A block-wise quantized tensor: codes and per-block scales. */
export interface QuantizedBlockwise {
  /** One code (an index into the map) per element. */
  codes: Uint8Array;
  /** One float32 scale per block: the block's largest |value|. */
  absmax: Float32Array;
}

/** Throws unless `blockSize` is a power of two in [MIN_BLOCK_SIZE, MAX_BLOCK_SIZE] (`what` names it in the message). */
export function validateBlockSize(blockSize: unknown, what = 'blockSize'): asserts blockSize is number {
  if (
    typeof blockSize !== 'number' ||
    !Number.isInteger(blockSize) ||
    blockSize < MIN_BLOCK_SIZE ||
    blockSize > MAX_BLOCK_SIZE ||
    (blockSize & (blockSize - 1)) !== 0
  ) {
    throw new Error(`${what} must be a power of two in [${MIN_BLOCK_SIZE}, ${MAX_BLOCK_SIZE}], got ${String(blockSize)}`);
  }
}

/** Blocks of `blockSize` elements that cover `length` elements (the last one may be partial). */
export function blockCount(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}

/** Index of the map value nearest to `v` (binary search over the sorted map of any size; ties go low). */
export function nearestCode(map: Float32Array, v: number): number {
  const last = map.length - 1;
  if (!(v > map[0])) return 0; // also maps NaN to 0; callers never pass NaN
  if (v >= map[last]) return last;
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (map[mid] <= v) lo = mid;
    else hi = mid;
  }
  return v - map[lo] <= map[hi] - v ? lo : hi;
}

/**
 * How an optimizer state's code departs from the plain nearest code (the public
 * `quantizeBlockwise` uses 'none'):
 * - 'sign' (signed states, docs/architecture.md §1.3): a code whose map value has the opposite sign of the
 *   value moves one step toward the value's sign (keeps the direction of momentum states).
 * - 'positive' (unsigned states): a value x > 0 whose nearest map value is 0 (or whose quotient
 *   x / absmax underflows to 0) takes the next code, the smallest positive map value, so a
 *   positive second moment never decodes to 0 (Adam's m / (sqrt(v) + eps) would blow up).
 */
export type StateNudge = 'none' | 'sign' | 'positive';

/** `code` (the nearest code of x's quotient) after the state nudge for a value x. */
export function nudgeCode(map: Float32Array, code: number, x: number, nudge: StateNudge): number {
  if (nudge === 'sign') {
    const q = map[code];
    if (x > 0 && q < 0) return code + 1;
    if (x < 0 && q >= 0) return code - 1;
  } else if (nudge === 'positive') {
    // Finite x only: +Infinity (an overflowed state, saturated by the caller) is left as it was.
    if (x > 0 && x < Infinity && map[code] <= 0 && code < map.length - 1) return code + 1;
  }
  return code;
}

/**
 * Quantize `n` values of `src` from `srcOffset` into `codes` from `codeOffset`; returns the
 * block's absmax. An all-zero block gets absmax 0 and the code of the map value nearest 0.
 * `nudge` is the optimizer-state rule above ('none': plain nearest code).
 */
export function quantizeBlock(
  map: Float32Array,
  src: ArrayLike<number>,
  srcOffset: number,
  n: number,
  codes: Uint8Array,
  codeOffset: number,
  nudge: StateNudge,
): number {
  let absmax = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(src[srcOffset + i]);
    if (a > absmax) absmax = a;
  }
  absmax = Math.fround(absmax);
  if (absmax === 0) {
    codes.fill(nearestCode(map, 0), codeOffset, codeOffset + n);
    return 0;
  }
  for (let i = 0; i < n; i++) {
    const x = src[srcOffset + i];
    const code = nearestCode(map, Math.fround(x / absmax));
    codes[codeOffset + i] = nudge === 'none' ? code : nudgeCode(map, code, x, nudge);
  }
  return absmax;
}

/** Dequantize `n` codes into `out` from `outOffset`: map[code] * absmax. */
export function dequantizeBlock(
  map: Float32Array,
  codes: Uint8Array,
  codeOffset: number,
  n: number,
  absmax: number,
  out: Float32Array,
  outOffset: number,
): void {
  for (let i = 0; i < n; i++) out[outOffset + i] = map[codes[codeOffset + i]] * absmax;
}

function checkFloat32(x: unknown, what: string): asserts x is Float32Array {
  if (!(x instanceof Float32Array)) throw new Error(`${what} must be a Float32Array`);
}

/** Quantize a whole tensor block-wise. Throws on non-finite input (it has no 8-bit code). */
export function quantizeBlockwise(x: Float32Array, options: BlockwiseOptions): QuantizedBlockwise {
  checkFloat32(x, 'quantizeBlockwise: x');
  const { map, blockSize = 2048 } = options ?? ({} as BlockwiseOptions);
  validateMap(map, 'quantizeBlockwise: map');
  validateBlockSize(blockSize, 'quantizeBlockwise: blockSize');
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new Error(`quantizeBlockwise: x[${i}] = ${x[i]} is not finite`);
  }
  const blocks = blockCount(x.length, blockSize);
  const codes = new Uint8Array(x.length);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const start = b * blockSize;
    const n = Math.min(blockSize, x.length - start);
    absmax[b] = quantizeBlock(map, x, start, n, codes, start, 'none');
  }
  return { codes, absmax };
}

/** Inverse of `quantizeBlockwise`: `map[code] * absmax[block]` for every element. */
export function dequantizeBlockwise(
  codes: Uint8Array,
  absmax: Float32Array,
  options: BlockwiseOptions & { out?: Float32Array },
): Float32Array {
  if (!(codes instanceof Uint8Array)) throw new Error('dequantizeBlockwise: codes must be a Uint8Array');
  checkFloat32(absmax, 'dequantizeBlockwise: absmax');
  const { map, blockSize = 2048, out = new Float32Array(codes.length) } = options ?? ({} as BlockwiseOptions);
  validateMap(map, 'dequantizeBlockwise: map');
  validateBlockSize(blockSize, 'dequantizeBlockwise: blockSize');
  const blocks = blockCount(codes.length, blockSize);
  if (absmax.length !== blocks) {
    throw new Error(
      `dequantizeBlockwise: absmax has ${absmax.length} values but ${codes.length} codes in blocks of ${blockSize} need ${blocks}`,
    );
  }
  checkFloat32(out, 'dequantizeBlockwise: out');
  if (out.length !== codes.length) {
    throw new Error(`dequantizeBlockwise: out has length ${out.length}, expected ${codes.length}`);
  }
  for (let b = 0; b < blocks; b++) {
    const start = b * blockSize;
    dequantizeBlock(map, codes, start, Math.min(blockSize, codes.length - start), absmax[b], out, start);
  }
  return out;
}
