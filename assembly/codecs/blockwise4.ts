/**
 * The block-wise 4-bit codec's WebAssembly part: decode and encode of one block of packed
 * codes (two per byte, low nibble first), bit-identical to src/codecs/blockwise4.ts.
 *
 * Table (built by src/kernels/cpu/wasm-tables.ts `buildTable4`, layout QUANT4_TABLE): the map,
 * 15 thresholds (the code of r = x / absmax is the number of thresholds below r, which equals
 * the reference's nearest code for every float32 r), the map's bytes as four 16-byte planes,
 * the code of 0, the number of negative map values, the sign-nudge flag and (when every cell
 * needs at most one step) a cell table for the update encoder, as the 8-bit codec's. The
 * zero-free linear map of unsigned states is encoded by arithmetic instead (`linear4`), and the
 * float32 precision's fused decode reads a per-thread pair table (`buildPairs4`) built from the
 * map; the byte planes serve the exact precision's decode into scratch.
 *
 * A block starts at an even element (block sizes are powers of two >= 64), so its codes start
 * at a byte boundary and threads running other blocks never share a byte.
 */
import { quant4f } from './blockwise8';
import { T4_FLAT, T4_HAS_FLAT, T4_MAP, T4_NEGATIVES, T4_PLANES, T4_SIGN, T4_THRESHOLDS, T4_ZERO } from '../generated/layout';

/** Bytes of a pair table (buildPairs4). */
export const PAIRS4_BYTES: usize = 256 * 8;

/**
 * Writes the pair table of a 16-value map to `out`: entry b (8 bytes at out + 8·b) holds
 * map[b & 15] then map[b >> 4], the values of the two codes packed in byte b, so the fused
 * decode turns two code bytes into four values with two 8-byte loads (assembly/common.ts ld4).
 */
export function buildPairs4(map: usize, out: usize): void {
  const m0 = v128.load(map);
  const m1 = v128.load(map, 16);
  const m2 = v128.load(map, 32);
  const m3 = v128.load(map, 48);
  for (let h: usize = 0; h < 16; h++) {
    const hv = v128.load32_splat(map + (h << 2));
    const o = out + (h << 7); // entries 16·h … 16·h + 15
    v128.store(o, i32x4.shuffle(m0, hv, 0, 4, 1, 4));
    v128.store(o, i32x4.shuffle(m0, hv, 2, 4, 3, 4), 16);
    v128.store(o, i32x4.shuffle(m1, hv, 0, 4, 1, 4), 32);
    v128.store(o, i32x4.shuffle(m1, hv, 2, 4, 3, 4), 48);
    v128.store(o, i32x4.shuffle(m2, hv, 0, 4, 1, 4), 64);
    v128.store(o, i32x4.shuffle(m2, hv, 2, 4, 3, 4), 80);
    v128.store(o, i32x4.shuffle(m3, hv, 0, 4, 1, 4), 96);
    v128.store(o, i32x4.shuffle(m3, hv, 2, 4, 3, 4), 112);
  }
}

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
 * Whether the table's map is the zero-free linear map f32((i + 1) / 16) of unsigned states with
 * no nudge (src/codecs/blockwise4.ts `createZeroFreeLinearMap4`), which `linear4` encodes by
 * arithmetic instead of a table lookup.
 */
export function isLinear4(tab: usize): bool {
  if (load<i32>(tab + T4_SIGN) != 0) return false;
  for (let i = 0; i < 16; i++) if (load<f32>(tab + T4_MAP + (<usize>i << 2)) != <f32>(i + 1) / 16) return false;
  return true;
}

/**
 * Codes (i32 lanes) of four finite values x of an unsigned state on the zero-free linear map,
 * 0 <= x <= absmax (absmax nonzero). The reference's nearest code (ties low) of
 * r = f32(x / absmax) on values (i + 1)/16 is the number of midpoints (k + 1.5)/16, k = 0…14,
 * strictly below r, that is clamp(ceil(16·r − 1.5), 0, 15). 16·r is exact, and so is
 * 16·r − 1.5 wherever it is >= −0.75 (an exponent at most 3: 1.5 is a multiple of its ulp);
 * below that it stays negative and the code is 0. The clamped integer becomes the low bits of
 * 2^23 + it.
 */
@inline function linear4(x: v128, amv: v128): v128 {
  const y = f32x4.sub(f32x4.mul(f32x4.div(x, amv), f32x4.splat(16)), f32x4.splat(1.5));
  const c = f32x4.pmax(f32x4.pmin(f32x4.ceil(y), f32x4.splat(15)), f32x4.splat(0));
  return v128.and(f32x4.add(c, f32x4.splat(8388608)), i32x4.splat(15));
}

/**
 * Encodes n float32 values at src (finite, zero-padded to a multiple of 4, absmax their largest
 * magnitude) into packed codes at `codes`: ceil(n / 2) bytes, the high nibble past an odd n 0.
 * `linear`: the table's map is the linear one (isLinear4), encoded by `linear4`.
 */
export function quantizeBlock4F(src: usize, n: i32, codes: usize, tab: usize, absmaxIn: f32, linear: bool): void {
  const zero = load<i32>(tab + T4_ZERO);
  if (absmaxIn == 0) {
    memory.fill(codes, <u8>(zero | (zero << 4)), <usize>(n >> 1));
    if (n & 1) store<u8>(codes + (<usize>n >> 1), <u8>zero);
    return;
  }
  const amv = f32x4.splat(absmaxIn);
  let j: i32 = 0;
  if (linear) {
    for (; j + 16 <= n; j += 16) {
      const p = src + (<usize>j << 2);
      const c0 = linear4(v128.load(p), amv);
      const c1 = linear4(v128.load(p, 16), amv);
      const c2 = linear4(v128.load(p, 32), amv);
      const c3 = linear4(v128.load(p, 48), amv);
      const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), i16x8.narrow_i32x4_u(c2, c3));
      v128.store64_lane(codes + (<usize>j >> 1), pack16(bytes), 0);
    }
  } else if (load<i32>(tab + T4_HAS_FLAT)) {
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
