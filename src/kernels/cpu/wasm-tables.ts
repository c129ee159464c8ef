/**
 * Nearest-code lookup tables for the WebAssembly quantizer (layout: scripts/codegen/layout.ts).
 *
 * A float32 r = x / absmax is classified by its sign, exponent and top 7 mantissa bits (one
 * cell per 1/128 of an octave, from zero up to 1). Within a cell the
 * reference code (`nearestCode`, then the optimizer-state nudge `nudgeCode`) takes at most
 * two neighbouring values, so a cell stores the code at its smallest magnitude and the largest
 * magnitude that still gets it (its low 16 bits: the high bits are the cell's); past it the
 * code is one further from the middle of the map.
 * at the cell ends and bisecting for the step, so the kernel's codes equal the reference's for
 * every float32 r. A map where some cell holds two steps gets no table (the kernel then falls
 * back to the reference for that state); the dynamic and linear maps never do.
 */
import { nearestCode, nudgeCode, type StateNudge } from '../../quant/blockwise.js';
import type { WasmRuntime } from './wasm-runtime.js';

import { QUANT4_TABLE, QUANT_TABLE, QUANT_TABLE_BYTES, QUANT_TABLE_CELLS, QUANT_TABLE_FLAT } from '../../generated/kernel-layout.js';
import { MAP_SIZE_4BIT } from '../../quant/maps.js';

const KLO: number = QUANT_TABLE.cellLow; // cell 0 holds zero and the denormals
const KHI: number = QUANT_TABLE.cellHigh;
const CELLS = QUANT_TABLE_CELLS;
const T_ZERO = QUANT_TABLE.zeroCode;
const T_CELL = QUANT_TABLE.cells;
/**
 * Second layout for the update kernels' encoder: one entry per 16 high bits of r (sign,
 * exponent, 7 mantissa bits), 65536 entries, so the index is just r's bits >>> 16: positive
 * cells at 0..KHI, negative cells at 0x8000 + 0..KHI, magnitudes past 1 (never reached: |x| <=
 * absmax) hold the code of ±1.
 */
const T_FLAT = QUANT_TABLE_FLAT;
const TABLE_BYTES = QUANT_TABLE_BYTES;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function fromBits(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

/**
 * The reference code of r for a nonzero value of sign `negative` (blockwise.ts quantizeBlock).
 * x = 0 never reaches a table lookup (the kernels give it the code of 0), so r = ±0 here is a
 * nonzero x whose quotient underflowed: +0 from x > 0 ('positive' nudges it), -0 from x < 0.
 */
function referenceCode(map: Float32Array, r: number, negative: boolean, nudge: StateNudge): number {
  const code = nudgeCode(map, nearestCode(map, r), negative ? -1 : 1, nudge);
  return code & 255; // the reference stores into a Uint8Array
}

/** Table bytes for `map`, or null when a cell would need more than one threshold. */
export function buildTable(map: Float32Array, nudge: StateNudge): Uint8Array | null {
  const bytes = new Uint8Array(TABLE_BYTES);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 256; i++) view.setFloat32(4 * i, map[i], true);
  view.setInt32(T_ZERO, nearestCode(map, 0), true);
  for (let side = 0; side < 2; side++) {
    const negative = side === 1;
    const code = (bits: number) => referenceCode(map, negative ? -fromBits(bits) : fromBits(bits), negative, nudge);
    for (let k = KLO; k <= KHI; k++) {
      const lo = k === KLO ? 0 : k * 65536;
      const hi = k === KHI ? 0x3f800000 : (k + 1) * 65536 - 1;
      const cLo = code(lo);
      const cHi = code(hi);
      // Entry: code at the cell's low-magnitude end in bits 16..23; low 16 bits of the largest
      // magnitude that still has that code (0xffff: the whole cell has it).
      let lowBits = 0xffff;
      if (cLo !== cHi) {
        if (Math.abs(cHi - cLo) !== 1) return null;
        // Largest magnitude bits a in [lo, hi] whose code is still cLo.
        let a = lo;
        let b = hi;
        while (b - a > 1) {
          const mid = a + Math.floor((b - a) / 2);
          if (code(mid) === cLo) a = mid;
          else b = mid;
        }
        lowBits = a & 0xffff;
      }
      const cell = side * CELLS + (k - KLO);
      view.setUint32(T_CELL + 4 * cell, (cLo << 16) | lowBits, true);
      view.setUint32(T_FLAT + 4 * (side * 0x8000 + k), (cLo << 16) | lowBits, true);
    }
    const past = (code(0x3f800000) << 16) | 0xffff;
    for (let k = KHI + 1; k < 0x8000; k++) view.setUint32(T_FLAT + 4 * (side * 0x8000 + k), past, true);
  }
  return bytes;
}

/** A float32's position in the order of values (-0 just below +0), and back. */
function orderKey(v: number): number {
  f32[0] = v;
  const b = u32[0];
  return b & 0x80000000 ? -(b & 0x7fffffff) - 1 : b;
}
function fromOrderKey(k: number): number {
  return fromBits(k < 0 ? (-(k + 1) | 0x80000000) >>> 0 : k);
}

/**
 * The 4-bit codec's table (layout QUANT4_TABLE) for a 16-value map. `nearestCode` is
 * monotone in r, so threshold k, the largest float32 r in [-1, 1] whose code is <= k (found by
 * bisecting over the float32 values), makes the code of any r the count of thresholds below r:
 * the same code as the reference for every float32 r, NaN included (no threshold is below it).
 * The sign nudge is applied after, from the count of negative map values.
 */
export function buildTable4(map: Float32Array, sign: 'signed' | 'unsigned'): Uint8Array {
  if (map.length !== MAP_SIZE_4BIT) throw new Error(`buildTable4: expected a map of ${MAP_SIZE_4BIT} values, got ${map.length}`);
  const T = QUANT4_TABLE;
  const bytes = new Uint8Array(T.bytes);
  const view = new DataView(bytes.buffer);
  for (let c = 0; c < MAP_SIZE_4BIT; c++) {
    view.setFloat32(T.map + 4 * c, map[c], true);
    for (let j = 0; j < 4; j++) bytes[T.planes + 16 * j + c] = bytes[T.map + 4 * c + j];
  }
  for (let k = 0; k < MAP_SIZE_4BIT - 1; k++) {
    let a = orderKey(-1); // nearestCode(-1) = 0 <= k
    let b = orderKey(1); // nearestCode(1) = 15 > k
    while (b - a > 1) {
      const mid = a + Math.floor((b - a) / 2);
      if (nearestCode(map, fromOrderKey(mid)) <= k) a = mid;
      else b = mid;
    }
    view.setFloat32(T.thresholds + 4 * k, fromOrderKey(a), true);
  }
  view.setFloat32(T.thresholds + 4 * (MAP_SIZE_4BIT - 1), Infinity, true); // unused lane
  view.setInt32(T.zeroCode, nearestCode(map, 0), true);
  view.setInt32(T.negatives, map.filter((v) => v < 0).length, true);
  view.setInt32(T.signNudge, sign === 'signed' ? 1 : 0, true);
  view.setInt32(T.hasFlat, buildFlat4(view, sign === 'signed') ? 1 : 0, true);
  return bytes;
}

/**
 * The 4-bit update encoder's cell table (QUANT4_TABLE.flat), from the thresholds already in
 * `view`: entry bits >>> 16 of r holds the code at the cell's low-magnitude end and the low 16
 * bits of the largest magnitude with that code, the code being the kernel's own definition
 * (thresholds below r, then the sign nudge for a nonzero x of r's sign). False, and the kernel
 * keeps the 15-compare encoder, when some cell would need two steps (a custom map with two
 * values within 1/128 of an octave).
 */
function buildFlat4(view: DataView, signNudge: boolean): boolean {
  const T = QUANT4_TABLE;
  const thresholds = Array.from({ length: MAP_SIZE_4BIT - 1 }, (_, k) => view.getFloat32(T.thresholds + 4 * k, true));
  const negatives = view.getInt32(T.negatives, true);
  // r = ±0 here is a nonzero x whose quotient underflowed (x = ±0 takes the code of 0 in the
  // kernel): its sign bit is x's, and so is the nudge's direction.
  const codeOf = (bits: number): number => {
    const r = fromBits(bits >>> 0);
    let c = 0;
    for (const t of thresholds) if (r > t) c++;
    if (signNudge) {
      if (bits >= 0 && c < negatives) c++;
      else if (bits < 0 && c >= negatives) c--;
    }
    return c;
  };
  const one = 0x3f800000;
  for (let side = 0; side < 2; side++) {
    const sbit = side ? 0x80000000 | 0 : 0;
    const step = side ? -1 : 1; // toward larger magnitudes the code moves up for r > 0, down for r < 0
    for (let k = 0; k < 0x8000; k++) {
      const lo = Math.min(k * 65536, one);
      const hi = Math.min(k * 65536 + 0xffff, one);
      const cLo = codeOf(sbit | lo);
      const cHi = codeOf(sbit | hi);
      let lowBits = 0xffff;
      if (cLo !== cHi) {
        if (cHi - cLo !== step || hi !== k * 65536 + 0xffff) return false;
        let a = lo;
        let b = hi;
        while (b - a > 1) {
          const mid = a + Math.floor((b - a) / 2);
          if (codeOf(sbit | mid) === cLo) a = mid;
          else b = mid;
        }
        lowBits = a & 0xffff;
      }
      view.setUint32(T.flat + 4 * (side * 0x8000 + k), (cLo << 16) | lowBits, true);
    }
  }
  return true;
}

/** Tables in a runtime's memory, cached per map object and per map contents. */
export class TableCache {
  private readonly byObject = new WeakMap<Float32Array, Map<StateNudge, number | null>>();
  private readonly byContent = new Map<string, number | null>();

  constructor(private readonly runtime: WasmRuntime) {}

  /** Pointer of the table for (`map`, `nudge`), or null if the map cannot have one. */
  get(map: Float32Array, nudge: StateNudge): number | null {
    let entry = this.byObject.get(map);
    if (!entry) this.byObject.set(map, (entry = new Map()));
    const hit = entry.get(nudge);
    if (hit !== undefined) return hit;
    const key = `${nudge}:${Array.from(new Uint32Array(map.buffer, map.byteOffset, 256)).join(',')}`;
    let ptr = this.byContent.get(key);
    if (ptr === undefined) {
      const bytes = map.length === 256 ? buildTable(map, nudge) : null;
      ptr = bytes ? this.runtime.alloc(bytes.length) : null;
      if (ptr !== null && bytes) this.runtime.u8(ptr, bytes.length).set(bytes);
      this.byContent.set(key, ptr);
    }
    entry.set(nudge, ptr);
    return ptr;
  }

  private readonly byObject4 = new WeakMap<Float32Array, Map<string, number>>();
  private readonly byContent4 = new Map<string, number>();

  /** Pointer of the 4-bit table for (`map`, `sign`); every sorted 16-value map has one. */
  get4(map: Float32Array, sign: 'signed' | 'unsigned'): number {
    let entry = this.byObject4.get(map);
    if (!entry) this.byObject4.set(map, (entry = new Map()));
    const hit = entry.get(sign);
    if (hit !== undefined) return hit;
    const key = `${sign}:${Array.from(new Uint32Array(map.buffer, map.byteOffset, MAP_SIZE_4BIT)).join(',')}`;
    let ptr = this.byContent4.get(key);
    if (ptr === undefined) {
      const bytes = buildTable4(map, sign);
      ptr = this.runtime.alloc(bytes.length);
      this.runtime.u8(ptr, bytes.length).set(bytes);
      this.byContent4.set(key, ptr);
    }
    entry.set(sign, ptr);
    return ptr;
  }
}
