/**
 * State formats: how an optimizer state tensor is stored between steps. A rule only ever sees
 * float32 blocks; a store decodes a block into float32 scratch and encodes it back. Adding a
 * format (4-bit, fp8) means adding a store here, not touching any rule.
 */
import { blockCount, dequantizeBlock, nearestCode, quantizeBlock, type StateNudge } from '../quant/blockwise.js';
import { createDynamicMap } from '../quant/maps.js';
import type { StateSign } from './rule.js';

/** Largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

export type StateFormat = 'float32' | 'blockwise8';

export interface StateStore {
  readonly format: StateFormat;
  readonly sign: StateSign;
  readonly length: number;
  /** Decode elements [start, start+n) into out[0..n). */
  load(start: number, n: number, out: Float32Array): void;
  /** Encode src[0..n) into elements [start, start+n); 8-bit stores take whole blocks. */
  store(start: number, n: number, src: Float32Array): void;
  /** Bytes this state occupies. */
  readonly bytes: number;
}

/** Full-precision state: a plain Float32Array. */
export class Float32State implements StateStore {
  readonly format = 'float32';
  constructor(
    readonly sign: StateSign,
    readonly values: Float32Array,
  ) {}
  get length(): number {
    return this.values.length;
  }
  get bytes(): number {
    return this.values.byteLength;
  }
  load(start: number, n: number, out: Float32Array): void {
    out.set(this.values.subarray(start, start + n));
  }
  store(start: number, n: number, src: Float32Array): void {
    this.values.set(src.subarray(0, n), start);
  }
}

/**
 * How 8-bit optimizer states depart from the plain nearest code: momentum-like (signed) states
 * keep their sign (DESIGN §1.3); second moments (unsigned) that are positive stay positive
 * (a deviation from DESIGN, see README "Deviations": v decoding to 0 makes m / (sqrt(v) + eps) huge).
 */
export function stateNudge(sign: StateSign): StateNudge {
  return sign === 'signed' ? 'sign' : 'positive';
}

/** 8-bit block-wise dynamic state: one code per element, one float32 absmax per block. */
export class Blockwise8State implements StateStore {
  readonly format = 'blockwise8';
  constructor(
    readonly sign: StateSign,
    readonly blockSize: number,
    readonly map: Float32Array,
    readonly codes: Uint8Array,
    readonly absmax: Float32Array,
  ) {}
  /** The encoding rule of this state's codes (see `stateNudge`). */
  get nudge(): StateNudge {
    return stateNudge(this.sign);
  }
  get length(): number {
    return this.codes.length;
  }
  get bytes(): number {
    return this.codes.byteLength + this.absmax.byteLength;
  }
  load(start: number, n: number, out: Float32Array): void {
    dequantizeBlock(this.map, this.codes, start, n, this.absmax[start / this.blockSize], out, 0);
  }
  store(start: number, n: number, src: Float32Array): void {
    let absmax = quantizeBlock(this.map, src, 0, n, this.codes, start, this.nudge);
    if (absmax === Infinity) {
      // A state overflowed float32 (e.g. v = g² with |g| > 5.8e20 in Adam): saturate it at the largest
      // float32 so the block keeps a finite absmax instead of decoding to NaN forever.
      for (let i = 0; i < n; i++) src[i] = Math.max(-FLOAT32_MAX, Math.min(FLOAT32_MAX, src[i]));
      absmax = quantizeBlock(this.map, src, 0, n, this.codes, start, this.nudge);
    }
    this.absmax[start / this.blockSize] = absmax;
  }
}

let dynamicMaps: Record<StateSign, Float32Array> | undefined;

/** The shared dynamic maps (built once; never handed out to callers, who get their own copies). */
export function stateMap(sign: StateSign): Float32Array {
  dynamicMaps ??= { signed: createDynamicMap(true), unsigned: createDynamicMap(false) };
  return dynamicMaps[sign];
}

/** A zero-initialised state of `length` elements. */
export function createState(format: StateFormat, sign: StateSign, length: number, blockSize: number): StateStore {
  if (format === 'float32') return new Float32State(sign, new Float32Array(length));
  const map = stateMap(sign);
  const codes = new Uint8Array(length).fill(nearestCode(map, 0));
  return new Blockwise8State(sign, blockSize, map, codes, new Float32Array(blockCount(length, blockSize)));
}
