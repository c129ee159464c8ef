/**
 * What the WebAssembly kernel's parts share: descriptor access, the SIMD helpers the generated
 * rule loops (./generated/rules.ts) are written with, and the globals through which a loop
 * hands back its block absmax and norms and reads the fused-decode setup of the 8-bit codec.
 */
import { F_BASE } from './generated/layout';

// Block absmax of each new state and the direction norms, written by the update loops.
export let am0: f32 = 0;
export let am1: f32 = 0;
export let am2: f32 = 0;
export let normU: f64 = 0;
export let normP: f64 = 0;

@inline export function di(desc: usize, slot: i32): i32 {
  return load<i32>(desc + (<usize>slot << 2));
}
@inline export function df(desc: usize, slot: i32): f64 {
  return load<f64>(desc + F_BASE + (<usize>slot << 3));
}
@inline export function dfv(desc: usize, slot: i32): v128 {
  return f64x2.splat(df(desc, slot));
}

/**
 * The largest of four lanes, none NaN (absmax accumulators; the loops never let NaN in), by two
 * shuffled pmax steps: no data-dependent branch per block.
 */
@inline export function max4(m: v128): f32 {
  const h = f32x4.pmax(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.pmax(h, i32x4.shuffle(h, h, 1, 0, 3, 2)), 0);
}

// ---- float64 on two lanes (exact mode) --------------------------------------------------------
// The reference evaluates each rule in float64 (JavaScript numbers), stores each new state as
// float32 and reads it back for the parameter update, and rounds the parameter to float32 when
// it stores it. Doing the same here, operation for operation and in the same order, gives
// bit-identical states and parameters.

@inline export function ld2(ptr: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(ptr));
}
/** Rounds two float64 lanes to float32 and stores them; returns the float32 vector (lanes 2, 3 zero). */
@inline export function st2(ptr: usize, x: v128): v128 {
  const r = f32x4.demote_f64x2_zero(x);
  v128.store64_lane(ptr, r, 0);
  return r;
}
/** Math.fround of two float64 lanes. */
@inline export function r32(x: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(x));
}
@inline export function finiteMask(g: v128): v128 {
  return f64x2.eq(f64x2.sub(g, g), f64x2.splat(0));
}
@inline export function signOf(x: v128): v128 {
  const one = f64x2.splat(1);
  const pos = f64x2.gt(x, f64x2.splat(0));
  const neg = f64x2.lt(x, f64x2.splat(0));
  return v128.bitselect(one, v128.bitselect(f64x2.neg(one), x, neg), pos);
}
@inline export function sq2(acc: v128, x: v128): v128 {
  return f64x2.add(acc, f64x2.mul(x, x));
}

// ---- float32 mode: exact states, float32 parameter maths, four lanes ---------------------------
// The new states are computed in float64 exactly as the reference computes them (so states,
// absmax and 8-bit codes are bit-identical: no tie or underflow can differ), then everything
// that only feeds the parameter (sqrt, division, p - lr·dir, decay) runs in float32 on four
// lanes: parameters agree with the reference to a few ulps. This is where the exact mode spends
// most of its time (float64 sqrt/div on two lanes).

// Fused decode (float32 mode, 8- and 4-bit states): when fcK != 0, state K's old values are
// read as map[code] × absmax straight from its codes instead of from a dequantized scratch
// copy; fnib: the codes are 4-bit (two per byte, low nibble first) and fmapK is then a pair
// table (256 entries of two float32: the values of a byte's low and high nibble), else one
// byte each and fmapK is the 256-value map.
export let fnib: bool = false;
export let fc0: usize = 0;
export let fc1: usize = 0;
export let fc2: usize = 0;
export let fmap0: usize = 0;
export let fmap1: usize = 0;
export let fmap2: usize = 0;
// Segments (float32 loops): one call runs n elements as segments (blocks) of fseg elements
// (0: a single segment); segment j decodes state K with the old absmax at fapK + 4·j and
// writes its new absmax to famOut + 4·(K·AM_SEGMENTS + j).
export const AM_SEGMENTS: usize = 64;
export let fseg: i32 = 0;
export let fap0: usize = 0;
export let fap1: usize = 0;
export let fap2: usize = 0;
export let famOut: usize = 0;

/** Four old state values at byte offset o: decoded from codes c (if c != 0) or loaded from s; map: see fmapK. */
@inline export function ld4(s: usize, c: usize, o: usize, map: usize, am: v128): v128 {
  if (c == 0) return v128.load(s + o);
  if (fnib) {
    // Four elements from o / 4 (a multiple of 4): two whole bytes at element / 2, each byte
    // one 8-byte entry (map[low nibble], map[high nibble]) of the pair table `map`.
    const b = c + (o >> 3);
    const w = v128.load64_zero(map + (<usize>load<u8>(b) << 3));
    return f32x4.mul(v128.load64_lane(map + (<usize>load<u8>(b, 1) << 3), w, 1), am);
  }
  const q = c + (o >> 2);
  let v = v128.load32_zero(map + (<usize>load<u8>(q) << 2));
  v = v128.load32_lane(map + (<usize>load<u8>(q, 1) << 2), v, 1);
  v = v128.load32_lane(map + (<usize>load<u8>(q, 2) << 2), v, 2);
  v = v128.load32_lane(map + (<usize>load<u8>(q, 3) << 2), v, 3);
  return f32x4.mul(v, am);
}

@inline export function lo64(x: v128): v128 {
  return f64x2.promote_low_f32x4(x);
}
@inline export function hi64(x: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 2, 3));
}
/** Rounds two float64 pairs to one float32x4 (lo lanes 0-1, hi lanes 2-3). */
@inline export function join32(a: v128, b: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}
/** Two 64-bit lane masks as one 32-bit lane mask. */
@inline export function joinMask(a: v128, b: v128): v128 {
  return i32x4.shuffle(a, b, 0, 2, 4, 6);
}
@inline export function sq4(acc: v128, x: v128): v128 {
  const lo = lo64(x);
  const hi = hi64(x);
  return f64x2.add(acc, f64x2.add(f64x2.mul(lo, lo), f64x2.mul(hi, hi)));
}
