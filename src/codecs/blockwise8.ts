/**
 * The block-wise 8-bit codec (docs/architecture.md §1.2, §1.3): one code per element (the index
 * of the nearest value of a 256-entry dynamic map, signed or unsigned by the state's sign) and
 * one float32 absmax per block of `blockSize` elements. Its WebAssembly part is
 * assembly/codecs/blockwise8.ts (tables: src/kernels/cpu/wasm-tables.ts), its WGSL part
 * src/kernels/webgpu/tables.ts and the 8-bit branch of src/kernels/webgpu/template.ts.
 */
import { blockCount, dequantizeBlock, nearestCode, quantizeBlock, validateBlockSize, type StateNudge } from '../quant/blockwise.js';
import { createDynamicMap, validateMap } from '../quant/maps.js';
import type { StateSign } from '../optim/rule.js';
import { checkFinite, entryError, expectArray, quantizeSaturating, type StateCodec, type StateStore } from './codec.js';

/** The checkpoint entry of a block-wise 8-bit state. */
export interface Blockwise8Entry {
  /** Always 'blockwise8'. */
  format: 'blockwise8';
  /** The state's sign ('signed' or 'unsigned'), which picks its map. */
  sign: StateSign;
  /** Elements per block (a power of two in [64, 4096]). */
  blockSize: number;
  /** The 256-value code map (the dynamic map of the state's sign). */
  map: Float32Array;
  /** One code (an index into `map`) per element. */
  codes: Uint8Array;
  /** One scale per block: the block's largest |value|. */
  absmax: Float32Array;
}

/**
 * How 8-bit optimizer states depart from the plain nearest code: momentum-like (signed) states
 * keep their sign; second moments (unsigned) that are positive stay positive (a deviation from
 * the reference library, docs/architecture.md §2: v decoding to 0 makes m / (sqrt(v) + eps) huge).
 */
export function stateNudge(sign: StateSign): StateNudge {
  return sign === 'signed' ? 'sign' : 'positive';
}

let dynamicMaps: Record<StateSign, Float32Array> | undefined;

/** The shared dynamic maps (built once; never handed out to callers, who get their own copies). */
export function stateMap(sign: StateSign): Float32Array {
  dynamicMaps ??= { signed: createDynamicMap(true), unsigned: createDynamicMap(false) };
  return dynamicMaps[sign];
}

/** A block-wise 8-bit state: one byte per element and one float32 absmax per block. */
export class Blockwise8State implements StateStore {
  readonly format = 'blockwise8';
  constructor(
    readonly sign: StateSign,
    /** Elements per block (a power of two in [64, 4096]). */
    readonly blockSize: number,
    /** The 256-value code map (shared; do not change it). */
    readonly map: Float32Array,
    /** One code (an index into `map`) per element. */
    readonly codes: Uint8Array,
    /** One scale per block: the block's largest |value|. */
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
    this.absmax[start / this.blockSize] = quantizeSaturating(src, n, () => quantizeBlock(this.map, src, 0, n, this.codes, start, this.nudge));
  }
}

/** A map fits a state's sign: a signed state's map spans both signs, an unsigned state's has no negative value. */
function checkMapSign(map: Float32Array, sign: StateSign, where: string): void {
  if (sign === 'unsigned' && map[0] < 0) entryError(where, `the map of an unsigned state has a negative value (${map[0]})`);
  if (sign === 'signed' && !(map[0] < 0 && map[map.length - 1] > 0)) entryError(where, `the map of a signed state must span negative and positive values`);
}

/** The block-wise 8-bit codec (`optimBits: 8`, blocks of 256 by default). */
export const blockwise8Codec: StateCodec<Blockwise8State, Blockwise8Entry> = {
  format: 'blockwise8',
  bits: 8,
  blockwise: true,
  defaultBlockSize: 256,
  bytes: (length, blockSize) => length + 4 * blockCount(length, blockSize),
  create(sign, length, blockSize) {
    const map = stateMap(sign);
    const codes = new Uint8Array(length).fill(nearestCode(map, 0));
    return new Blockwise8State(sign, blockSize, map, codes, new Float32Array(blockCount(length, blockSize)));
  },
  owns: (s): s is Blockwise8State => s instanceof Blockwise8State,
  blockSizeOf: (s) => s.blockSize,
  toEntry: (s) => ({ format: 'blockwise8', sign: s.sign, blockSize: s.blockSize, map: s.map.slice(), codes: s.codes.slice(), absmax: s.absmax.slice() }),
  fromEntry(e, sign, length, where) {
    try {
      validateBlockSize(e.blockSize);
      validateMap(e.map);
    } catch (err) {
      entryError(where, (err as Error).message);
    }
    checkMapSign(e.map as Float32Array, sign, `${where}.map`);
    const blockSize = e.blockSize as number;
    const codes = expectArray(e.codes, Uint8Array, length, `${where}.codes`);
    const absmax = expectArray(e.absmax, Float32Array, blockCount(length, blockSize), `${where}.absmax`);
    checkFinite(absmax, `${where}.absmax`, 0);
    return new Blockwise8State(sign, blockSize, (e.map as Float32Array).slice(), codes.slice(), absmax.slice());
  },
};
