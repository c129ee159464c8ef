/**
 * The block-wise 8-bit codec's WebAssembly part: nearest-code encoding through the lookup
 * table that src/kernels/cpu/wasm-tables.ts builds (layout: scripts/codegen/layout.ts), block
 * absmax and decoding. Bit-identical to src/quant/blockwise.ts (the codec's reference).
 *
 * Encoding: r = x / absmax as a float32 division, then the nearest code from the table built on
 * the JS side from the reference `nearestCode` and the state rule `nudgeCode` (so codes are
 * identical for identical r; x = ±0 takes the code of 0 outside the table). The table is
 * indexed by the float bits of r: sign, exponent and 7 mantissa bits (one cell per 1/128
 * octave); each cell holds the code of its low end and at most one threshold where the code
 * steps up by one.
 */
import { CELLS, KHI, T_CELL, T_FLAT, T_ZERO } from '../generated/layout';
import { max4 } from '../common';

/**
 * Codes (in i32 lanes) of four values x with the block's absmax; see the header comment. A
 * cell's entry packs its code at the low end of the cell (bits 16..23) and the low 16 bits of
 * its threshold (bits 0..15); the threshold's high bits are the cell's own key, so the step test
 * is an integer compare of magnitudes. Toward larger magnitudes the code steps up for positive r
 * and down for negative r.
 */
@inline export function quant4(x: v128, absmax: v128, tab: usize, zeroCode: v128): v128 {
  const r = f32x4.div(x, absmax);
  const mag = v128.and(r, i32x4.splat(0x7fffffff));
  const key = i32x4.min_s(i32x4.shr_u(mag, 16), i32x4.splat(KHI)); // > 1 only for NaN
  const neg = i32x4.shr_s(r, 31);
  const idx = i32x4.shl(i32x4.add(key, v128.and(neg, i32x4.splat(CELLS))), 2);
  const base = tab + T_CELL;
  let e = v128.load32_zero(base + <usize>i32x4.extract_lane(idx, 0));
  e = v128.load32_lane(base + <usize>i32x4.extract_lane(idx, 1), e, 1);
  e = v128.load32_lane(base + <usize>i32x4.extract_lane(idx, 2), e, 2);
  e = v128.load32_lane(base + <usize>i32x4.extract_lane(idx, 3), e, 3);
  const thr = v128.or(i32x4.shl(key, 16), v128.and(e, i32x4.splat(0xffff)));
  const above = i32x4.gt_s(mag, thr); // -1 where past the threshold
  // positive: code - above; negative: code + above
  let code = i32x4.add(i32x4.sub(i32x4.shr_u(e, 16), v128.xor(above, neg)), neg);
  // x = ±0 takes the code of 0 (no sign nudge: it has no sign); NaN takes code 0 as in the reference.
  code = v128.andnot(code, f32x4.ne(r, r));
  return v128.bitselect(zeroCode, code, f32x4.eq(x, f32x4.splat(0)));
}

/**
 * quant4 for the update kernels, where x is finite and |x| <= absmax (so 0 <= |r| <= 1): the
 * cell index is r's high 16 bits, straight into the flat table; about half the operations of
 * quant4.
 */
@inline export function quant4f(x: v128, absmax: v128, flat: usize, zeroCode: v128): v128 {
  // r = ±0 here is a nonzero x whose quotient underflowed (x = ±0 takes the code of 0 below):
  // cell +0 (x > 0) holds the 'positive' nudge of unsigned states, cell -0 (x < 0) the sign
  // nudge of signed states, as the reference.
  const r = f32x4.div(x, absmax);
  const idx = v128.and(i32x4.shr_u(r, 14), i32x4.splat(~3));
  let e = v128.load32_zero(flat + <usize>i32x4.extract_lane(idx, 0));
  e = v128.load32_lane(flat + <usize>i32x4.extract_lane(idx, 1), e, 1);
  e = v128.load32_lane(flat + <usize>i32x4.extract_lane(idx, 2), e, 2);
  e = v128.load32_lane(flat + <usize>i32x4.extract_lane(idx, 3), e, 3);
  const low = i32x4.splat(0xffff);
  const above = i32x4.gt_s(v128.and(r, low), v128.and(e, low));
  const neg = i32x4.shr_s(r, 31);
  const code = i32x4.add(i32x4.sub(i32x4.shr_u(e, 16), v128.xor(above, neg)), neg);
  return v128.bitselect(zeroCode, code, f32x4.eq(x, f32x4.splat(0)));
}

/** Stores the first min(left, 4) of four codes (i32 lanes) at dst, one byte each. */
@inline function storeCodes4(dst: usize, c: v128, left: i32): void {
  const packed = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c, c), i16x8.narrow_i32x4_u(c, c));
  if (left >= 4) v128.store32_lane(dst, packed, 0);
  else {
    v128.store8_lane(dst, packed, 0);
    if (left > 1) v128.store8_lane(dst, packed, 1, 1);
    if (left > 2) v128.store8_lane(dst, packed, 2, 2);
  }
}

/** quantizeBlock for the update kernels (finite values, absmax their max magnitude). */
export function quantizeBlockF(src: usize, n: i32, codes: usize, tab: usize, absmaxIn: f32): void {
  if (absmaxIn == 0) {
    memory.fill(codes, <u8>load<i32>(tab + T_ZERO), <usize>n);
    return;
  }
  const amv = f32x4.splat(absmaxIn);
  const flat = tab + T_FLAT;
  const zcv = i32x4.splat(load<i32>(tab + T_ZERO));
  let j: i32 = 0;
  for (; j + 16 <= n; j += 16) {
    const p = src + (<usize>j << 2);
    const c0 = quant4f(v128.load(p), amv, flat, zcv);
    const c1 = quant4f(v128.load(p, 16), amv, flat, zcv);
    const c2 = quant4f(v128.load(p, 32), amv, flat, zcv);
    const c3 = quant4f(v128.load(p, 48), amv, flat, zcv);
    v128.store(codes + <usize>j, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), i16x8.narrow_i32x4_u(c2, c3)));
  }
  for (; j < n; j += 4) {
    // The tail of a partial block reads up to 3 values past n: scratch is padded with zeros.
    const c = quant4f(v128.load(src + (<usize>j << 2)), amv, flat, zcv);
    storeCodes4(codes + <usize>j, c, n - j);
  }
}

/** Quantizes n float32 values at src into codes; returns the absmax it used. */
export function quantizeBlock(src: usize, n: i32, codes: usize, tab: usize, absmaxIn: f32): void {
  const zc = load<i32>(tab + T_ZERO);
  if (absmaxIn == 0) {
    memory.fill(codes, <u8>zc, <usize>n);
    return;
  }
  const amv = f32x4.splat(absmaxIn);
  const zcv = i32x4.splat(zc);
  let j: i32 = 0;
  for (; j + 16 <= n; j += 16) {
    const p = src + (<usize>j << 2);
    const c0 = quant4(v128.load(p), amv, tab, zcv);
    const c1 = quant4(v128.load(p, 16), amv, tab, zcv);
    const c2 = quant4(v128.load(p, 32), amv, tab, zcv);
    const c3 = quant4(v128.load(p, 48), amv, tab, zcv);
    const packed = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), i16x8.narrow_i32x4_u(c2, c3));
    v128.store(codes + <usize>j, packed);
  }
  for (; j < n; j += 4) {
    // The tail of a partial block reads up to 3 values past n: scratch is padded with zeros.
    const c = quant4(v128.load(src + (<usize>j << 2)), amv, tab, zcv);
    storeCodes4(codes + <usize>j, c, n - j);
  }
}

/** max |x| over n values (n a multiple of 4 or zero-padded); NaN is skipped like the reference. */
export function absmaxOf(src: usize, n: i32): f32 {
  let m = f32x4.splat(0);
  let j: i32 = 0;
  for (; j + 4 <= n; j += 4) m = f32x4.pmax(m, f32x4.abs(v128.load(src + (<usize>j << 2))));
  let r = max4(m);
  for (; j < n; j++) {
    const a = Mathf.abs(load<f32>(src + (<usize>j << 2)));
    if (a > r) r = a;
  }
  return r;
}


/** Dequantizes n codes into float32 out (map[code] × absmax), zero-padding out to a multiple of 4. */
export function dequantizeBlock(codes: usize, n: i32, absmax: f32, map: usize, out: usize): void {
  const amv = f32x4.splat(absmax);
  let j: i32 = 0;
  for (; j + 16 <= n; j += 16) {
    const c = v128.load(codes + <usize>j);
    const o = out + (<usize>j << 2);
    let v = v128.load32_zero(map + (<usize>i8x16.extract_lane_u(c, 0) << 2));
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 1) << 2), v, 1);
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 2) << 2), v, 2);
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 3) << 2), v, 3);
    v128.store(o, f32x4.mul(v, amv));
    v = v128.load32_zero(map + (<usize>i8x16.extract_lane_u(c, 4) << 2));
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 5) << 2), v, 1);
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 6) << 2), v, 2);
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 7) << 2), v, 3);
    v128.store(o, f32x4.mul(v, amv), 16);
    v = v128.load32_zero(map + (<usize>i8x16.extract_lane_u(c, 8) << 2));
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 9) << 2), v, 1);
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 10) << 2), v, 2);
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 11) << 2), v, 3);
    v128.store(o, f32x4.mul(v, amv), 32);
    v = v128.load32_zero(map + (<usize>i8x16.extract_lane_u(c, 12) << 2));
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 13) << 2), v, 1);
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 14) << 2), v, 2);
    v = v128.load32_lane(map + (<usize>i8x16.extract_lane_u(c, 15) << 2), v, 3);
    v128.store(o, f32x4.mul(v, amv), 48);
  }
  for (; j < n; j++) {
    store<f32>(out + (<usize>j << 2), load<f32>(map + (<usize>load<u8>(codes + <usize>j) << 2)) * absmax);
  }
  for (; (j & 3) != 0; j++) store<f32>(out + (<usize>j << 2), 0);
}
