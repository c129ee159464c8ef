/**
 * The block-wise 4-bit codec's WebAssembly part: decode and encode of one block of packed
 * codes (two per byte, low nibble first), bit-identical to src/codecs/blockwise4.ts.
 *
 * Table (built by src/kernels/cpu/wasm-tables.ts `buildTable4`, layout QUANT4_TABLE): the map,
 * 15 thresholds (the code of r = x / absmax is the number of thresholds below r, which equals
 * the reference's nearest code for every float32 r), the map's bytes as four 16-byte planes,
 * the code of 0, the number of negative map values, the sign-nudge flag and (when every cell
 * needs at most one step) a cell table for the update encoder, as the 8-bit codec's.
 *
 * A block starts at an even element (block sizes are powers of two >= 64), so its codes start
 * at a byte boundary and threads running other blocks never share a byte.
 */
import { quant4f } from './blockwise8';
import { T4_FLAT, T4_HAS_FLAT, T4_NEGATIVES, T4_PLANES, T4_SIGN, T4_THRESHOLDS, T4_ZERO } from '../generated/layout';

/** Four f32 map values for the codes in byte lanes 0..3 of `c` (a swizzle per byte plane). */
@inline function lookup4(c: v128, p0: v128, p1: v128, p2: v128, p3: v128, lane: i32): v128 {
  // Indices of this group of four codes, each repeated over its four bytes.
  let idx: v128;
  if (lane == 0) idx = i8x16.shuffle(c, c, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  else if (lane == 1) idx = i8x16.shuffle(c, c, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7);
  else if (lane == 2) idx = i8x16.shuffle(c, c, 8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11);
  else idx = i8x16.shuffle(c, c, 12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15);
  // Byte j of each f32 lane comes from plane j.
  const b0 = v128.and(i8x16.swizzle(p0, idx), i32x4.splat(0x000000ff));
  const b1 = v128.and(i8x16.swizzle(p1, idx), i32x4.splat(0x0000ff00));
  const b2 = v128.and(i8x16.swizzle(p2, idx), i32x4.splat(0x00ff0000));
  const b3 = v128.and(i8x16.swizzle(p3, idx), i32x4.splat(<i32>0xff000000));
  return v128.or(v128.or(b0, b1), v128.or(b2, b3));
}

/** Sixteen codes (one per byte lane, in element order) from eight packed bytes at the low half of `w`. */
@inline function unpack16(w: v128): v128 {
  const lo = v128.and(w, i8x16.splat(15));
  const hi = i8x16.shr_u(w, 4);
  return i8x16.shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}

/**
 * Decodes n elements whose packed codes start at `codes` into float32 `out` (map[code] ×
 * absmax), zero-padding out to a multiple of 4.
 */
export function dequantizeBlock4(codes: usize, n: i32, absmax: f32, tab: usize, out: usize): void {
  const amv = f32x4.splat(absmax);
  const p0 = v128.load(tab + T4_PLANES);
  const p1 = v128.load(tab + T4_PLANES, 16);
  const p2 = v128.load(tab + T4_PLANES, 32);
  const p3 = v128.load(tab + T4_PLANES, 48);
  let j: i32 = 0;
  for (; j + 16 <= n; j += 16) {
    const c = unpack16(v128.load64_zero(codes + (<usize>j >> 1)));
    const o = out + (<usize>j << 2);
    v128.store(o, f32x4.mul(lookup4(c, p0, p1, p2, p3, 0), amv));
    v128.store(o, f32x4.mul(lookup4(c, p0, p1, p2, p3, 1), amv), 16);
    v128.store(o, f32x4.mul(lookup4(c, p0, p1, p2, p3, 2), amv), 32);
    v128.store(o, f32x4.mul(lookup4(c, p0, p1, p2, p3, 3), amv), 48);
  }
  for (; j < n; j++) {
    const byte = <u32>load<u8>(codes + (<usize>j >> 1));
    const code = j & 1 ? byte >> 4 : byte & 15;
    store<f32>(out + (<usize>j << 2), load<f32>(tab + (<usize>code << 2)) * absmax);
  }
  for (; (j & 3) != 0; j++) store<f32>(out + (<usize>j << 2), 0);
}

/** Codes (i32 lanes) of four finite values x of a block with a nonzero absmax (see the header). */
@inline function codes4(x: v128, amv: v128, tab: usize, sign: bool, negatives: v128): v128 {
  const r = f32x4.div(x, amv);
  const t = tab + T4_THRESHOLDS;
  // Each compare is -1 where r is past the threshold: the negated sum counts them.
  let a = f32x4.gt(r, v128.load32_splat(t));
  let b = f32x4.gt(r, v128.load32_splat(t, 4));
  a = i32x4.add(a, f32x4.gt(r, v128.load32_splat(t, 8)));
  b = i32x4.add(b, f32x4.gt(r, v128.load32_splat(t, 12)));
  a = i32x4.add(a, f32x4.gt(r, v128.load32_splat(t, 16)));
  b = i32x4.add(b, f32x4.gt(r, v128.load32_splat(t, 20)));
  a = i32x4.add(a, f32x4.gt(r, v128.load32_splat(t, 24)));
  b = i32x4.add(b, f32x4.gt(r, v128.load32_splat(t, 28)));
  a = i32x4.add(a, f32x4.gt(r, v128.load32_splat(t, 32)));
  b = i32x4.add(b, f32x4.gt(r, v128.load32_splat(t, 36)));
  a = i32x4.add(a, f32x4.gt(r, v128.load32_splat(t, 40)));
  b = i32x4.add(b, f32x4.gt(r, v128.load32_splat(t, 44)));
  a = i32x4.add(a, f32x4.gt(r, v128.load32_splat(t, 48)));
  b = i32x4.add(b, f32x4.gt(r, v128.load32_splat(t, 52)));
  a = i32x4.add(a, f32x4.gt(r, v128.load32_splat(t, 56)));
  let code = i32x4.neg(i32x4.add(a, b));
  if (sign) {
    // The sign nudge (nudgeCode 'sign'): x > 0 on a negative map value moves up, x < 0 on a
    // value >= 0 moves down; map values below code `negatives` are the negative ones.
    const onNegative = i32x4.lt_s(code, negatives);
    const up = v128.and(f32x4.gt(x, f32x4.splat(0)), onNegative);
    const down = v128.andnot(f32x4.lt(x, f32x4.splat(0)), onNegative);
    code = i32x4.add(i32x4.sub(code, up), down);
  }
  return code;
}

// codes4 through the cell table (T4_FLAT, when the table has one) is the 8-bit encoder's
// quant4f over the 4-bit table: the cell of r's high 16 bits gives the nudged code at its
// low-magnitude end and the low bits of the last magnitude with it; past that, one step (up for
// r > 0, down for r < 0). The table bakes in the sign nudge from r's sign bit, which is x's even
// where r underflowed to ±0; x = ±0 itself (no nudge) takes the code of 0.

/** Two nibbles per byte: byte lanes (c[2i], c[2i+1]) of 16 codes become c[2i] | c[2i+1] << 4 in the low 8 bytes. */
@inline function pack16(c: v128): v128 {
  const pairs = v128.or(v128.and(c, i16x8.splat(0x000f)), v128.and(i16x8.shr_u(c, 4), i16x8.splat(0x00f0)));
  return i8x16.narrow_i16x8_u(pairs, pairs);
}

/**
 * Encodes n float32 values at src (finite, zero-padded to a multiple of 4, absmax their largest
 * magnitude) into packed codes at `codes`: ceil(n / 2) bytes, the high nibble past an odd n 0.
 */
export function quantizeBlock4F(src: usize, n: i32, codes: usize, tab: usize, absmaxIn: f32): void {
  const zero = load<i32>(tab + T4_ZERO);
  if (absmaxIn == 0) {
    memory.fill(codes, <u8>(zero | (zero << 4)), <usize>(n >> 1));
    if (n & 1) store<u8>(codes + (<usize>n >> 1), <u8>zero);
    return;
  }
  const amv = f32x4.splat(absmaxIn);
  let j: i32 = 0;
  if (load<i32>(tab + T4_HAS_FLAT)) {
    const flat = tab + T4_FLAT;
    const zv = i32x4.splat(zero);
    for (; j + 16 <= n; j += 16) {
      const p = src + (<usize>j << 2);
      const c0 = quant4f(v128.load(p), amv, flat, zv);
      const c1 = quant4f(v128.load(p, 16), amv, flat, zv);
      const c2 = quant4f(v128.load(p, 32), amv, flat, zv);
      const c3 = quant4f(v128.load(p, 48), amv, flat, zv);
      const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), i16x8.narrow_i32x4_u(c2, c3));
      v128.store64_lane(codes + (<usize>j >> 1), pack16(bytes), 0);
    }
  }
  // The rest (or all of it, for a table without cells): the 15-compare encoder.
  const sign = load<i32>(tab + T4_SIGN) != 0;
  const negatives = i32x4.splat(load<i32>(tab + T4_NEGATIVES));
  for (; j + 16 <= n; j += 16) {
    const p = src + (<usize>j << 2);
    const c0 = codes4(v128.load(p), amv, tab, sign, negatives);
    const c1 = codes4(v128.load(p, 16), amv, tab, sign, negatives);
    const c2 = codes4(v128.load(p, 32), amv, tab, sign, negatives);
    const c3 = codes4(v128.load(p, 48), amv, tab, sign, negatives);
    const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), i16x8.narrow_i32x4_u(c2, c3));
    v128.store64_lane(codes + (<usize>j >> 1), pack16(bytes), 0);
  }
  for (; j < n; j += 4) {
    // The tail reads up to 3 padding values past n; only elements < n are stored.
    const c = codes4(v128.load(src + (<usize>j << 2)), amv, tab, sign, negatives);
    const at = codes + (<usize>j >> 1);
    const left = n - j;
    store<u8>(at, <u8>(i32x4.extract_lane(c, 0) | (left > 1 ? i32x4.extract_lane(c, 1) << 4 : 0)));
    if (left > 2) store<u8>(at, <u8>(i32x4.extract_lane(c, 2) | (left > 3 ? i32x4.extract_lane(c, 3) << 4 : 0)), 1);
  }
}
