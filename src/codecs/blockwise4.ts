/**
 * The block-wise 4-bit codec (docs/architecture.md §1.5): two codes per byte and one float32
 * absmax per block of `blockSize` elements (default 128).
 *
 * - Packing: element i's code is in byte i >> 1, the low nibble for even i, the high nibble
 *   for odd i; an unused high nibble of the last byte is 0.
 * - Maps (16 sorted float32 values, `stateMap4`): signed states (momenta) use the dynamic map
 *   with 3 exponent bits, `createDynamicMap(true, 3, 4)`; unsigned states (second moments) the
 *   zero-free linear map (i + 1) / 16 of Li et al. 2023 (and torchao), so a positive value
 *   never decodes to 0 and no 'positive' nudge is needed.
 * - Encode: absmax = max |x|; code = nearest map value of f32(x / absmax) (ties low, as
 *   `nearestCode`), then the sign nudge for signed states. Decode: f32(map[code] · absmax).
 *
 * Its WebAssembly part is assembly/codecs/blockwise4.ts (table: src/kernels/cpu/wasm-tables.ts).
 */
import { blockCount, nearestCode, nudgeCode, validateBlockSize, type StateNudge } from '../quant/blockwise.js';
import { createDynamicMap, MAP_SIZE_4BIT, validateMap } from '../quant/maps.js';
import type { StateSign } from '../optim/rule.js';
import { checkFinite, entryError, expectArray, quantizeSaturating, type StateCodec, type StateStore } from './codec.js';

/** The checkpoint entry of a block-wise 4-bit state. */
export interface Blockwise4Entry {
  /** Always 'blockwise4'. */
  format: 'blockwise4';
  /** The state's sign ('signed' or 'unsigned'), which picks its map. */
  sign: StateSign;
  /** Elements per block (a power of two in [64, 4096]). */
  blockSize: number;
  /** 16 sorted values in [-1, 1]. */
  map: Float32Array;
  /** ceil(length / 2) bytes, two codes each (low nibble first). */
  codes: Uint8Array;
  /** One scale per block: the block's largest |value|. */
  absmax: Float32Array;
}

/** The block size of 4-bit states when the options give none (Li et al. 2023 use 128). */
export const BLOCKWISE4_DEFAULT_BLOCK_SIZE = 128;

/** Signed states keep their sign ('sign' nudge, as in 8 bits); unsigned states need none: their map has no zero. */
export function stateNudge4(sign: StateSign): StateNudge {
  return sign === 'signed' ? 'sign' : 'none';
}

/** The zero-free linear map (i + 1) / 16 for non-negative states. */
export function createZeroFreeLinearMap4(): Float32Array {
  return Float32Array.from({ length: MAP_SIZE_4BIT }, (_, i) => Math.fround((i + 1) / MAP_SIZE_4BIT));
}

let maps4: Record<StateSign, Float32Array> | undefined;

/** The shared 4-bit maps (built once; callers that may change a map must copy it). */
export function stateMap4(sign: StateSign): Float32Array {
  maps4 ??= { signed: createDynamicMap(true, 3, 4), unsigned: createZeroFreeLinearMap4() };
  return maps4[sign];
}

/** The 4-bit code of element i of packed `codes`. */
export function codeAt(codes: Uint8Array, i: number): number {
  const byte = codes[i >> 1];
  return i & 1 ? byte >> 4 : byte & 15;
}

/**
 * Encodes src[0..n) into elements [start, start + n) of packed `codes` (start even: blocks start
 * at multiples of a power of two >= 64); returns the block's absmax. An all-zero block gets
 * absmax 0 and the code nearest 0. Values must be finite (the store saturates first).
 */
export function quantizeBlock4(map: Float32Array, src: ArrayLike<number>, n: number, codes: Uint8Array, start: number, nudge: StateNudge): number {
  let absmax = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(src[i]);
    if (a > absmax) absmax = a;
  }
  absmax = Math.fround(absmax);
  const zero = nearestCode(map, 0);
  const code = (x: number) => {
    if (absmax === 0) return zero;
    const c = nearestCode(map, Math.fround(x / absmax));
    return nudge === 'none' ? c : nudgeCode(map, c, x, nudge);
  };
  for (let j = 0; j < n; j += 2) {
    // The high nibble past the tensor's last element stays 0.
    codes[(start + j) >> 1] = code(src[j]) | (j + 1 < n ? code(src[j + 1]) << 4 : 0);
  }
  return absmax;
}

/** Decodes elements [start, start + n) of packed `codes` into out[0..n): f32(map[code] · absmax). */
export function dequantizeBlock4(map: Float32Array, codes: Uint8Array, start: number, n: number, absmax: number, out: Float32Array): void {
  for (let j = 0; j < n; j++) out[j] = map[codeAt(codes, start + j)] * absmax;
}

/** A block-wise 4-bit state: half a byte per element and one float32 absmax per block. */
export class Blockwise4State implements StateStore {
  readonly format = 'blockwise4';
  constructor(
    readonly sign: StateSign,
    /** Elements per block (a power of two in [64, 4096]). */
    readonly blockSize: number,
    /** The 16-value code map (shared; do not change it). */
    readonly map: Float32Array,
    /** Two 4-bit codes per byte, low nibble first. */
    readonly codes: Uint8Array,
    /** One scale per block: the block's largest |value|. */
    readonly absmax: Float32Array,
    /** Elements (explicit: `codes` holds two per byte). */
    readonly length: number,
  ) {}
  /** The encoding rule of this state's codes (see `stateNudge4`). */
  get nudge(): StateNudge {
    return stateNudge4(this.sign);
  }
  get bytes(): number {
    return this.codes.byteLength + this.absmax.byteLength;
  }
  load(start: number, n: number, out: Float32Array): void {
    dequantizeBlock4(this.map, this.codes, start, n, this.absmax[start / this.blockSize], out);
  }
  store(start: number, n: number, src: Float32Array): void {
    this.absmax[start / this.blockSize] = quantizeSaturating(src, n, () => quantizeBlock4(this.map, src, n, this.codes, start, this.nudge));
  }
}

/**
 * A map fits a state's sign: a signed state's spans negative and positive values; an unsigned
 * state's has no value <= 0 (4-bit has no positive nudge: a zero level would let v decode to 0).
 */
function checkMapSign4(map: Float32Array, sign: StateSign, where: string): void {
  if (sign === 'unsigned' && !(map[0] > 0)) entryError(where, `the 4-bit map of an unsigned state must have no value <= 0 (a second moment would decode to 0), got ${map[0]}`);
  if (sign === 'signed' && !(map[0] < 0 && map[map.length - 1] > 0)) entryError(where, `the map of a signed state must span negative and positive values`);
}

export const blockwise4Codec: StateCodec<Blockwise4State, Blockwise4Entry> = {
  format: 'blockwise4',
  bits: 4,
  blockwise: true,
  defaultBlockSize: BLOCKWISE4_DEFAULT_BLOCK_SIZE,
  bytes: (length, blockSize) => Math.ceil(length / 2) + 4 * blockCount(length, blockSize),
  create(sign, length, blockSize) {
    const map = stateMap4(sign);
    const zero = nearestCode(map, 0);
    const codes = new Uint8Array(Math.ceil(length / 2)).fill(zero | (zero << 4));
    if (length & 1) codes[codes.length - 1] = zero;
    return new Blockwise4State(sign, blockSize, map, codes, new Float32Array(blockCount(length, blockSize)), length);
  },
  owns: (s): s is Blockwise4State => s instanceof Blockwise4State,
  blockSizeOf: (s) => s.blockSize,
  toEntry: (s) => ({ format: 'blockwise4', sign: s.sign, blockSize: s.blockSize, map: s.map.slice(), codes: s.codes.slice(), absmax: s.absmax.slice() }),
  fromEntry(e, sign, length, where) {
    try {
      validateBlockSize(e.blockSize);
      validateMap(e.map, 'map', MAP_SIZE_4BIT);
    } catch (err) {
      entryError(where, (err as Error).message);
    }
    checkMapSign4(e.map as Float32Array, sign, `${where}.map`);
    const blockSize = e.blockSize as number;
    const codes = expectArray(e.codes, Uint8Array, Math.ceil(length / 2), `${where}.codes`);
    if (length & 1 && codes[codes.length - 1] >> 4 !== 0) {
      entryError(`${where}.codes`, `the unused high nibble of the last byte must be 0 (the tensor has an odd length ${length}), got ${codes[codes.length - 1] >> 4}`);
    }
    const absmax = expectArray(e.absmax, Float32Array, blockCount(length, blockSize), `${where}.absmax`);
    checkFinite(absmax, `${where}.absmax`, 0);
    return new Blockwise4State(sign, blockSize, (e.map as Float32Array).slice(), codes.slice(), absmax.slice(), length);
  },
};
