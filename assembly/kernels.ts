/**
 * bitopt CPU kernels, AssemblyScript → WebAssembly (128-bit SIMD, shared memory).
 *
 * The JS side (src/kernels/cpu/wasm-*.ts) owns the memory: it allocates every array, writes a
 * job descriptor and calls `run(desc, chunk)` on one or more threads, each over a block-aligned
 * chunk of the tensor. Nothing here allocates, so every instance (one per thread) is stateless
 * apart from a few globals.
 *
 * The maths is the reference kernel's (src/kernels/cpu/reference.ts, src/optim/rules/*.ts),
 * in float64 where it decides the states (always) and the parameters (exact mode). Block-wise
 * quantization follows src/quant/blockwise.ts exactly: r = x / absmax as a float32 division,
 * then the nearest-code search via a lookup table built on the JS side from the reference
 * `nearestCode` and the state rule `nudgeCode` (so codes are identical for identical r; x = ±0
 * takes the code of 0 outside the table). The table is indexed by
 * the float bits of r: sign, exponent and 7 mantissa bits (one cell per 1/128 octave); each cell
 * holds the code of its low end and at most one threshold where the code steps up by one.
 */

// ---- descriptor layout (i32 slots; float64 coefficients from byte F_BASE) -------------------------
const D_OP: i32 = 0; // 1 update, 2 direction norms
const D_RULE: i32 = 1;
const D_N: i32 = 2;
const D_BLOCK: i32 = 3;
const D_BITS: i32 = 4; // 8 or 32
const D_PARAM: i32 = 5;
const D_GRAD: i32 = 6;
const D_DATA: i32 = 7; // 3 slots: codes (8-bit) or float32 values (32-bit) per state
const D_ABSMAX: i32 = 10; // 3 slots
const D_TABLE: i32 = 13; // 3 slots: quantization tables (8-bit)
const D_SCRATCH: i32 = 16; // per-thread scratch base
const D_CHUNKS: i32 = 17;
const D_NORMS: i32 = 18; // float64 pairs per block
const D_NSTATES: i32 = 19;
const D_FLOAT32: i32 = 20; // 1: float32 parameter maths (states still float64), 0: all float64 as the reference

const F_BASE: usize = 256; // byte offset of the float64 coefficients
const F_GRADSCALE: i32 = 0;
const F_LR: i32 = 1; // lr × trust (trust = 1 unless LAMB/LARS)
const F_B1: i32 = 2;
const F_OMB1: i32 = 3;
const F_B2: i32 = 4;
const F_OMB2: i32 = 5;
const F_B3: i32 = 6;
const F_OMB3: i32 = 7;
const F_STEPSIZE: i32 = 8;
const F_EPS: i32 = 9;
const F_WD: i32 = 10;
const F_DECAY: i32 = 11; // 1 - lr·wd
const F_USE_DECAY: i32 = 12; // 1 when the rule applies decoupled decay this step
const F_ALPHA: i32 = 13;
const F_C1: i32 = 14;
const F_SQRTC2: i32 = 15;
const F_MOMENTUM: i32 = 16;
const F_FIRST: i32 = 17;
const F_OMALPHA: i32 = 18;

const RULE_ADAM: i32 = 0;
const RULE_SGD: i32 = 1;
const RULE_RMSPROP: i32 = 2;
const RULE_ADAGRAD: i32 = 3;
const RULE_LION: i32 = 4;
const RULE_ADEMAMIX: i32 = 5;
const RULE_LAMB: i32 = 6;
const RULE_LARS: i32 = 7;

// ---- quantization table layout (built by src/kernels/cpu/wasm-tables.ts) --------------------
const KLO: i32 = 0; // every magnitude up to 1 has its own cell (zero and denormals share cell 0)
const KHI: i32 = 0x3f80; // 1.0
const CELLS: i32 = KHI - KLO + 1;
const T_MAP: usize = 0; // float32[256]
const T_ZERO: usize = 1024; // i32: code of 0
const T_CELL: usize = 1040; // u32[2·CELLS]: positive cells, then negative cells
const T_FLAT: usize = T_CELL + 8 * <usize>CELLS; // u32[65536]: the same cells indexed by r's bits >>> 16

// ---- scratch layout per thread --------------------------------------------------------------
const MAX_BLOCK: usize = 4096;
const S_STATES: usize = 0; // 3 × MAX_BLOCK float32
const S_TAIL: usize = 3 * MAX_BLOCK * 4; // p, g, s0, s1, s2: 4 float32 each
export const SCRATCH_BYTES: i32 = <i32>(S_TAIL + 5 * 16);

// Block absmax of each new state and the direction norms, written by the update loops.
let am0: f32 = 0;
let am1: f32 = 0;
let am2: f32 = 0;
let normU: f64 = 0;
let normP: f64 = 0;

@inline function di(desc: usize, slot: i32): i32 {
  return load<i32>(desc + (<usize>slot << 2));
}
@inline function df(desc: usize, slot: i32): f64 {
  return load<f64>(desc + F_BASE + (<usize>slot << 3));
}
@inline function dfv(desc: usize, slot: i32): v128 {
  return f64x2.splat(df(desc, slot));
}

// ---- quantization ---------------------------------------------------------------------------

/**
 * Codes (in i32 lanes) of four values x with the block's absmax; see the header comment. A
 * cell's entry packs its code at the low end of the cell (bits 16..23) and the low 16 bits of
 * its threshold (bits 0..15); the threshold's high bits are the cell's own key, so the step test
 * is an integer compare of magnitudes. Toward larger magnitudes the code steps up for positive r
 * and down for negative r.
 */
@inline function quant4(x: v128, absmax: v128, tab: usize, zeroCode: v128): v128 {
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
@inline function quant4f(x: v128, absmax: v128, flat: usize, zeroCode: v128): v128 {
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

/** quantizeBlock for the update kernels (finite values, absmax their max magnitude). */
function quantizeBlockF(src: usize, n: i32, codes: usize, tab: usize, absmaxIn: f32): void {
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
    const packed = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c, c), i16x8.narrow_i32x4_u(c, c));
    const left = n - j;
    const dst = codes + <usize>j;
    if (left >= 4) v128.store32_lane(dst, packed, 0);
    else {
      v128.store8_lane(dst, packed, 0);
      if (left > 1) v128.store8_lane(dst, packed, 1, 1);
      if (left > 2) v128.store8_lane(dst, packed, 2, 2);
    }
  }
}

/** Quantizes n float32 values at src into codes; returns the absmax it used. */
function quantizeBlock(src: usize, n: i32, codes: usize, tab: usize, absmaxIn: f32): void {
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
    const packed = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c, c), i16x8.narrow_i32x4_u(c, c));
    const left = n - j;
    const dst = codes + <usize>j;
    if (left >= 4) v128.store32_lane(dst, packed, 0);
    else {
      v128.store8_lane(dst, packed, 0);
      if (left > 1) v128.store8_lane(dst, packed, 1, 1);
      if (left > 2) v128.store8_lane(dst, packed, 2, 2);
    }
  }
}

/** max |x| over n values (n a multiple of 4 or zero-padded); NaN is skipped like the reference. */
function absmaxOf(src: usize, n: i32): f32 {
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

@inline function max4(m: v128): f32 {
  let r = f32x4.extract_lane(m, 0);
  const a = f32x4.extract_lane(m, 1);
  const b = f32x4.extract_lane(m, 2);
  const c = f32x4.extract_lane(m, 3);
  if (a > r) r = a;
  if (b > r) r = b;
  if (c > r) r = c;
  return r;
}

/** Dequantizes n codes into float32 out (map[code] × absmax), zero-padding out to a multiple of 4. */
function dequantizeBlock(codes: usize, n: i32, absmax: f32, map: usize, out: usize): void {
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

// ---- update rules, two elements at a time in float64 ------------------------------------------
// The reference evaluates each rule in float64 (JavaScript numbers), stores each new state as
// float32 and reads it back for the parameter update, and rounds the parameter to float32 when
// it stores it. Doing the same here, operation for operation and in the same order, gives
// bit-identical states and parameters.

@inline function ld2(ptr: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(ptr));
}
/** Rounds two float64 lanes to float32 and stores them; returns the float32 vector (lanes 2, 3 zero). */
@inline function st2(ptr: usize, x: v128): v128 {
  const r = f32x4.demote_f64x2_zero(x);
  v128.store64_lane(ptr, r, 0);
  return r;
}
/** Math.fround of two float64 lanes. */
@inline function r32(x: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(x));
}
@inline function finiteMask(g: v128): v128 {
  return f64x2.eq(f64x2.sub(g, g), f64x2.splat(0));
}
@inline function signOf(x: v128): v128 {
  const one = f64x2.splat(1);
  const pos = f64x2.gt(x, f64x2.splat(0));
  const neg = f64x2.lt(x, f64x2.splat(0));
  return v128.bitselect(one, v128.bitselect(f64x2.neg(one), x, neg), pos);
}
@inline function sq2(acc: v128, x: v128): v128 {
  return f64x2.add(acc, f64x2.mul(x, x));
}

/**
 * One rule over n (multiple of 4) elements: param p, grad g, states s0..s2 (float32, in place).
 * mode 1 updates; mode 2 (LAMB/LARS) only accumulates the direction norms into normU/normP.
 * A non-finite g leaves p alone and zeroes the element's states.
 */
function updateRun(desc: usize, rule: i32, mode: i32, n: i32, p: usize, g: usize, s0: usize, s1: usize, s2: usize): void {
  const zero = f64x2.splat(0);
  const gs = dfv(desc, F_GRADSCALE);
  const lr = dfv(desc, F_LR);
  const wd = dfv(desc, F_WD);
  const decay = dfv(desc, F_DECAY);
  const useDecay = df(desc, F_USE_DECAY) != 0;
  let m0 = f32x4.splat(0);
  let m1 = f32x4.splat(0);
  let m2 = f32x4.splat(0);
  let nu = zero;
  let np = zero;
  const end = <usize>n << 2;
  if (rule == RULE_ADAM || rule == RULE_LAMB) {
    const b1 = dfv(desc, F_B1);
    const omb1 = dfv(desc, F_OMB1);
    const b2 = dfv(desc, F_B2);
    const omb2 = dfv(desc, F_OMB2);
    const stepSize = dfv(desc, F_STEPSIZE);
    const epsHat = dfv(desc, F_EPS);
    for (let o: usize = 0; o < end; o += 8) {
      const pv = ld2(p + o);
      const gv = f64x2.mul(ld2(g + o), gs);
      const fin = finiteMask(gv);
      const m = r32(f64x2.add(f64x2.mul(b1, ld2(s0 + o)), f64x2.mul(omb1, gv)));
      const v = r32(f64x2.add(f64x2.mul(b2, ld2(s1 + o)), f64x2.mul(f64x2.mul(omb2, gv), gv)));
      const dir = f64x2.div(f64x2.mul(stepSize, m), f64x2.add(f64x2.sqrt(v), epsHat));
      if (mode == 2) {
        // u = fround(direction); non-finite elements do not count toward ||u||.
        nu = sq2(nu, v128.and(r32(dir), fin));
        np = sq2(np, pv);
        continue;
      }
      m0 = f32x4.pmax(m0, f32x4.abs(st2(s0 + o, v128.and(m, fin))));
      m1 = f32x4.pmax(m1, f32x4.abs(st2(s1 + o, v128.and(v, fin))));
      let pn = f64x2.sub(pv, f64x2.mul(lr, dir));
      if (useDecay) pn = f64x2.mul(pn, decay);
      st2(p + o, v128.bitselect(pn, pv, fin));
    }
  } else if (rule == RULE_SGD || rule == RULE_LARS) {
    const momentum = dfv(desc, F_MOMENTUM);
    const first = df(desc, F_FIRST) != 0;
    for (let o: usize = 0; o < end; o += 8) {
      const pv = ld2(p + o);
      const gv = f64x2.mul(ld2(g + o), gs);
      const fin = finiteMask(gv);
      const gd = f64x2.add(gv, f64x2.mul(wd, pv));
      const m = r32(first ? gd : f64x2.add(f64x2.mul(momentum, ld2(s0 + o)), gd));
      if (mode == 2) {
        nu = sq2(nu, v128.and(m, fin));
        np = sq2(np, pv);
        continue;
      }
      m0 = f32x4.pmax(m0, f32x4.abs(st2(s0 + o, v128.and(m, fin))));
      st2(p + o, v128.bitselect(f64x2.sub(pv, f64x2.mul(lr, m)), pv, fin));
    }
  } else if (rule == RULE_RMSPROP || rule == RULE_ADAGRAD) {
    const isRms = rule == RULE_RMSPROP;
    const alpha = dfv(desc, F_ALPHA);
    const oma = dfv(desc, F_OMALPHA);
    const eps = dfv(desc, F_EPS);
    for (let o: usize = 0; o < end; o += 8) {
      const pv = ld2(p + o);
      const gv = f64x2.mul(ld2(g + o), gs);
      const fin = finiteMask(gv);
      const gd = f64x2.add(gv, f64x2.mul(wd, pv));
      const sv = ld2(s0 + o);
      const v = r32(
        isRms ? f64x2.add(f64x2.mul(alpha, sv), f64x2.mul(f64x2.mul(oma, gd), gd)) : f64x2.add(sv, f64x2.mul(gd, gd)),
      );
      m0 = f32x4.pmax(m0, f32x4.abs(st2(s0 + o, v128.and(v, fin))));
      const pn = f64x2.sub(pv, f64x2.div(f64x2.mul(lr, gd), f64x2.add(f64x2.sqrt(v), eps)));
      st2(p + o, v128.bitselect(pn, pv, fin));
    }
  } else if (rule == RULE_LION) {
    const b1 = dfv(desc, F_B1);
    const omb1 = dfv(desc, F_OMB1);
    const b2 = dfv(desc, F_B2);
    const omb2 = dfv(desc, F_OMB2);
    for (let o: usize = 0; o < end; o += 8) {
      const pv = ld2(p + o);
      const gv = f64x2.mul(ld2(g + o), gs);
      const fin = finiteMask(gv);
      const m = ld2(s0 + o);
      const u = signOf(f64x2.add(f64x2.mul(b1, m), f64x2.mul(omb1, gv)));
      m0 = f32x4.pmax(m0, f32x4.abs(st2(s0 + o, v128.and(f64x2.add(f64x2.mul(b2, m), f64x2.mul(omb2, gv)), fin))));
      const pn = f64x2.sub(f64x2.mul(pv, decay), f64x2.mul(lr, u));
      st2(p + o, v128.bitselect(pn, pv, fin));
    }
  } else if (rule == RULE_ADEMAMIX) {
    const b1 = dfv(desc, F_B1);
    const omb1 = dfv(desc, F_OMB1);
    const b2 = dfv(desc, F_B2);
    const omb2 = dfv(desc, F_OMB2);
    const b3 = dfv(desc, F_B3);
    const omb3 = dfv(desc, F_OMB3);
    const alpha = dfv(desc, F_ALPHA);
    const c1 = dfv(desc, F_C1);
    const sqrtC2 = dfv(desc, F_SQRTC2);
    const eps = dfv(desc, F_EPS);
    for (let o: usize = 0; o < end; o += 8) {
      const pv = ld2(p + o);
      const gv = f64x2.mul(ld2(g + o), gs);
      const fin = finiteMask(gv);
      const m = r32(f64x2.add(f64x2.mul(b1, ld2(s0 + o)), f64x2.mul(omb1, gv)));
      const v = r32(f64x2.add(f64x2.mul(b2, ld2(s1 + o)), f64x2.mul(f64x2.mul(omb2, gv), gv)));
      const ms = r32(f64x2.add(f64x2.mul(b3, ld2(s2 + o)), f64x2.mul(omb3, gv)));
      m0 = f32x4.pmax(m0, f32x4.abs(st2(s0 + o, v128.and(m, fin))));
      m1 = f32x4.pmax(m1, f32x4.abs(st2(s1 + o, v128.and(v, fin))));
      m2 = f32x4.pmax(m2, f32x4.abs(st2(s2 + o, v128.and(ms, fin))));
      const num = f64x2.mul(lr, f64x2.add(f64x2.div(m, c1), f64x2.mul(alpha, ms)));
      let pn = f64x2.sub(pv, f64x2.div(num, f64x2.add(f64x2.div(f64x2.sqrt(v), sqrtC2), eps)));
      if (useDecay) pn = f64x2.mul(pn, decay);
      st2(p + o, v128.bitselect(pn, pv, fin));
    }
  }
  am0 = max4(m0);
  am1 = max4(m1);
  am2 = max4(m2);
  normU = f64x2.extract_lane(nu, 0) + f64x2.extract_lane(nu, 1);
  normP = f64x2.extract_lane(np, 0) + f64x2.extract_lane(np, 1);
}


// ---- fast mode: exact states, float32 parameter maths, four elements at a time ----------------
// The new states are computed in float64 exactly as the reference computes them (so states,
// absmax and 8-bit codes are bit-identical: no tie or underflow can differ), then everything
// that only feeds the parameter (sqrt, division, p - lr·dir, decay) runs in float32 on four
// lanes: parameters agree with the reference to a few ulps. This is where the exact mode spends
// most of its time (float64 sqrt/div on two lanes).

// Fused decode (float32 mode, 8-bit states): when fcK != 0, state K's old values are read as
// map[code] × absmax straight from its codes instead of from a dequantized scratch copy.
let fc0: usize = 0;
let fc1: usize = 0;
let fc2: usize = 0;
let fam0: f32 = 0;
let fam1: f32 = 0;
let fam2: f32 = 0;
let fmap0: usize = 0;
let fmap1: usize = 0;
let fmap2: usize = 0;

/** Four old state values at byte offset o: decoded from codes c (if c != 0) or loaded from s. */
@inline function ld4(s: usize, c: usize, o: usize, map: usize, am: v128): v128 {
  if (c == 0) return v128.load(s + o);
  const q = c + (o >> 2);
  let v = v128.load32_zero(map + (<usize>load<u8>(q) << 2));
  v = v128.load32_lane(map + (<usize>load<u8>(q, 1) << 2), v, 1);
  v = v128.load32_lane(map + (<usize>load<u8>(q, 2) << 2), v, 2);
  v = v128.load32_lane(map + (<usize>load<u8>(q, 3) << 2), v, 3);
  return f32x4.mul(v, am);
}

@inline function dfs(desc: usize, slot: i32): v128 {
  return f32x4.splat(<f32>df(desc, slot));
}
@inline function lo64(x: v128): v128 {
  return f64x2.promote_low_f32x4(x);
}
@inline function hi64(x: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 2, 3));
}
/** Rounds two float64 pairs to one float32x4 (lo lanes 0-1, hi lanes 2-3). */
@inline function join32(a: v128, b: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}
/** Two 64-bit lane masks as one 32-bit lane mask. */
@inline function joinMask(a: v128, b: v128): v128 {
  return i32x4.shuffle(a, b, 0, 2, 4, 6);
}
@inline function sq4(acc: v128, x: v128): v128 {
  const lo = lo64(x);
  const hi = hi64(x);
  return f64x2.add(acc, f64x2.add(f64x2.mul(lo, lo), f64x2.mul(hi, hi)));
}
/** b·s + c·g on four float32 states s (float64 g halves), rounded to float32 like the reference. */
@inline function ema4(b: v128, s: v128, c: v128, gl: v128, gh: v128): v128 {
  return join32(f64x2.add(f64x2.mul(b, lo64(s)), f64x2.mul(c, gl)), f64x2.add(f64x2.mul(b, hi64(s)), f64x2.mul(c, gh)));
}
/** b·s + (c·g)·g, the second-moment form. */
@inline function ema4sq(b: v128, s: v128, c: v128, gl: v128, gh: v128): v128 {
  return join32(
    f64x2.add(f64x2.mul(b, lo64(s)), f64x2.mul(f64x2.mul(c, gl), gl)),
    f64x2.add(f64x2.mul(b, hi64(s)), f64x2.mul(f64x2.mul(c, gh), gh)),
  );
}

function updateRun32(desc: usize, rule: i32, mode: i32, n: i32, p: usize, g: usize, s0: usize, s1: usize, s2: usize): void {
  const zero = f32x4.splat(0);
  const c0 = fc0;
  const c1 = fc1;
  const c2 = fc2;
  const map0 = fmap0;
  const map1 = fmap1;
  const map2 = fmap2;
  const a0 = f32x4.splat(fam0);
  const a1 = f32x4.splat(fam1);
  const a2 = f32x4.splat(fam2);
  const gs = dfv(desc, F_GRADSCALE);
  const lr = dfs(desc, F_LR);
  const wd = dfv(desc, F_WD);
  const decay = dfs(desc, F_DECAY);
  const useDecay = df(desc, F_USE_DECAY) != 0;
  let m0 = zero;
  let m1 = zero;
  let m2 = zero;
  let nu = f64x2.splat(0);
  let np = f64x2.splat(0);
  const end = <usize>n << 2;
  if (rule == RULE_ADAM || rule == RULE_LAMB) {
    const b1 = dfv(desc, F_B1);
    const omb1 = dfv(desc, F_OMB1);
    const b2 = dfv(desc, F_B2);
    const omb2 = dfv(desc, F_OMB2);
    const stepSize = dfs(desc, F_STEPSIZE);
    const epsHat = dfs(desc, F_EPS);
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const g4 = v128.load(g + o);
      const gl = f64x2.mul(lo64(g4), gs);
      const gh = f64x2.mul(hi64(g4), gs);
      const fin = joinMask(finiteMask(gl), finiteMask(gh));
      const m = ema4(b1, ld4(s0, c0, o, map0, a0), omb1, gl, gh);
      const v = ema4sq(b2, ld4(s1, c1, o, map1, a1), omb2, gl, gh);
      const dir = f32x4.div(f32x4.mul(stepSize, m), f32x4.add(f32x4.sqrt(v), epsHat));
      if (mode == 2) {
        nu = sq4(nu, v128.and(dir, fin));
        np = sq4(np, pv);
        continue;
      }
      const mk = v128.and(m, fin);
      const vk = v128.and(v, fin);
      v128.store(s0 + o, mk);
      v128.store(s1 + o, vk);
      m0 = f32x4.pmax(m0, f32x4.abs(mk));
      m1 = f32x4.pmax(m1, f32x4.abs(vk));
      let pn = f32x4.sub(pv, f32x4.mul(lr, dir));
      if (useDecay) pn = f32x4.mul(pn, decay);
      v128.store(p + o, v128.bitselect(pn, pv, fin));
    }
  } else if (rule == RULE_SGD || rule == RULE_LARS) {
    const momentum = dfv(desc, F_MOMENTUM);
    const first = df(desc, F_FIRST) != 0;
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const g4 = v128.load(g + o);
      const gl = f64x2.mul(lo64(g4), gs);
      const gh = f64x2.mul(hi64(g4), gs);
      const fin = joinMask(finiteMask(gl), finiteMask(gh));
      const gdl = f64x2.add(gl, f64x2.mul(wd, lo64(pv)));
      const gdh = f64x2.add(gh, f64x2.mul(wd, hi64(pv)));
      let m: v128;
      if (first) m = join32(gdl, gdh);
      else {
        const sv = ld4(s0, c0, o, map0, a0);
        m = join32(f64x2.add(f64x2.mul(momentum, lo64(sv)), gdl), f64x2.add(f64x2.mul(momentum, hi64(sv)), gdh));
      }
      if (mode == 2) {
        nu = sq4(nu, v128.and(m, fin));
        np = sq4(np, pv);
        continue;
      }
      const mk = v128.and(m, fin);
      v128.store(s0 + o, mk);
      m0 = f32x4.pmax(m0, f32x4.abs(mk));
      v128.store(p + o, v128.bitselect(f32x4.sub(pv, f32x4.mul(lr, m)), pv, fin));
    }
  } else if (rule == RULE_RMSPROP || rule == RULE_ADAGRAD) {
    const isRms = rule == RULE_RMSPROP;
    const alpha = dfv(desc, F_ALPHA);
    const oma = dfv(desc, F_OMALPHA);
    const eps = dfs(desc, F_EPS);
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const g4 = v128.load(g + o);
      const gl = f64x2.mul(lo64(g4), gs);
      const gh = f64x2.mul(hi64(g4), gs);
      const fin = joinMask(finiteMask(gl), finiteMask(gh));
      const gdl = f64x2.add(gl, f64x2.mul(wd, lo64(pv)));
      const gdh = f64x2.add(gh, f64x2.mul(wd, hi64(pv)));
      const sv = ld4(s0, c0, o, map0, a0);
      const v = isRms
        ? join32(
            f64x2.add(f64x2.mul(alpha, lo64(sv)), f64x2.mul(f64x2.mul(oma, gdl), gdl)),
            f64x2.add(f64x2.mul(alpha, hi64(sv)), f64x2.mul(f64x2.mul(oma, gdh), gdh)),
          )
        : join32(f64x2.add(lo64(sv), f64x2.mul(gdl, gdl)), f64x2.add(hi64(sv), f64x2.mul(gdh, gdh)));
      const vk = v128.and(v, fin);
      v128.store(s0 + o, vk);
      m0 = f32x4.pmax(m0, f32x4.abs(vk));
      const gd = join32(gdl, gdh);
      const pn = f32x4.sub(pv, f32x4.div(f32x4.mul(lr, gd), f32x4.add(f32x4.sqrt(v), eps)));
      v128.store(p + o, v128.bitselect(pn, pv, fin));
    }
  } else if (rule == RULE_LION) {
    const b1 = dfv(desc, F_B1);
    const omb1 = dfv(desc, F_OMB1);
    const b2 = dfv(desc, F_B2);
    const omb2 = dfv(desc, F_OMB2);
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const g4 = v128.load(g + o);
      const gl = f64x2.mul(lo64(g4), gs);
      const gh = f64x2.mul(hi64(g4), gs);
      const fin = joinMask(finiteMask(gl), finiteMask(gh));
      const sv = ld4(s0, c0, o, map0, a0);
      const ml = lo64(sv);
      const mh = hi64(sv);
      // The sign is taken in float64: a tiny interpolation must not underflow to zero.
      const u = join32(
        signOf(f64x2.add(f64x2.mul(b1, ml), f64x2.mul(omb1, gl))),
        signOf(f64x2.add(f64x2.mul(b1, mh), f64x2.mul(omb1, gh))),
      );
      const mk = v128.and(join32(f64x2.add(f64x2.mul(b2, ml), f64x2.mul(omb2, gl)), f64x2.add(f64x2.mul(b2, mh), f64x2.mul(omb2, gh))), fin);
      v128.store(s0 + o, mk);
      m0 = f32x4.pmax(m0, f32x4.abs(mk));
      const pn = f32x4.sub(f32x4.mul(pv, decay), f32x4.mul(lr, u));
      v128.store(p + o, v128.bitselect(pn, pv, fin));
    }
  } else if (rule == RULE_ADEMAMIX) {
    const b1 = dfv(desc, F_B1);
    const omb1 = dfv(desc, F_OMB1);
    const b2 = dfv(desc, F_B2);
    const omb2 = dfv(desc, F_OMB2);
    const b3 = dfv(desc, F_B3);
    const omb3 = dfv(desc, F_OMB3);
    const alpha = dfv(desc, F_ALPHA);
    const invC1 = f64x2.splat(1 / df(desc, F_C1));
    const sqrtC2 = dfs(desc, F_SQRTC2);
    const eps = dfs(desc, F_EPS);
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const g4 = v128.load(g + o);
      const gl = f64x2.mul(lo64(g4), gs);
      const gh = f64x2.mul(hi64(g4), gs);
      const fin = joinMask(finiteMask(gl), finiteMask(gh));
      const m = ema4(b1, ld4(s0, c0, o, map0, a0), omb1, gl, gh);
      const v = ema4sq(b2, ld4(s1, c1, o, map1, a1), omb2, gl, gh);
      const ms = ema4(b3, ld4(s2, c2, o, map2, a2), omb3, gl, gh);
      const mk = v128.and(m, fin);
      const vk = v128.and(v, fin);
      const sk = v128.and(ms, fin);
      v128.store(s0 + o, mk);
      v128.store(s1 + o, vk);
      v128.store(s2 + o, sk);
      m0 = f32x4.pmax(m0, f32x4.abs(mk));
      m1 = f32x4.pmax(m1, f32x4.abs(vk));
      m2 = f32x4.pmax(m2, f32x4.abs(sk));
      // m/c1 + alpha·ms may cancel: sum it in float64 (as the reference), round once.
      const num = f32x4.mul(
        lr,
        join32(
          f64x2.add(f64x2.mul(lo64(m), invC1), f64x2.mul(alpha, lo64(ms))),
          f64x2.add(f64x2.mul(hi64(m), invC1), f64x2.mul(alpha, hi64(ms))),
        ),
      );
      let pn = f32x4.sub(pv, f32x4.div(num, f32x4.add(f32x4.div(f32x4.sqrt(v), sqrtC2), eps)));
      if (useDecay) pn = f32x4.mul(pn, decay);
      v128.store(p + o, v128.bitselect(pn, pv, fin));
    }
  }
  am0 = max4(m0);
  am1 = max4(m1);
  am2 = max4(m2);
  normU = f64x2.extract_lane(nu, 0) + f64x2.extract_lane(nu, 1);
  normP = f64x2.extract_lane(np, 0) + f64x2.extract_lane(np, 1);
}

/** updateRun over n elements, any n: the last n % 4 go through zero-padded 4-element scratch. */
function updateAny(desc: usize, rule: i32, mode: i32, n: i32, p: usize, g: usize, s0: usize, s1: usize, s2: usize, tail: usize, nstates: i32): void {
  const body = n & ~3;
  let a0: f32 = 0;
  let a1: f32 = 0;
  let a2: f32 = 0;
  let u: f64 = 0;
  let q: f64 = 0;
  if (body > 0) {
    if (di(desc, D_FLOAT32)) updateRun32(desc, rule, mode, body, p, g, s0, s1, s2);
    else updateRun(desc, rule, mode, body, p, g, s0, s1, s2);
    a0 = am0;
    a1 = am1;
    a2 = am2;
    u = normU;
    q = normP;
  }
  const rest = n - body;
  if (rest > 0) {
    const off = <usize>body << 2;
    const bytes = <usize>rest << 2;
    memory.fill(tail, 0, 5 * 16);
    memory.copy(tail, p + off, bytes);
    memory.copy(tail + 16, g + off, bytes);
    if (nstates > 0) memory.copy(tail + 32, s0 + off, bytes);
    if (nstates > 1) memory.copy(tail + 48, s1 + off, bytes);
    if (nstates > 2) memory.copy(tail + 64, s2 + off, bytes);
    fc0 = 0; // the tail's old states were decoded into s0..s2 by run()
    fc1 = 0;
    fc2 = 0;
    if (di(desc, D_FLOAT32)) updateRun32(desc, rule, mode, 4, tail, tail + 16, tail + 32, tail + 48, tail + 64);
    else updateRun(desc, rule, mode, 4, tail, tail + 16, tail + 32, tail + 48, tail + 64);
    if (mode == 1) {
      memory.copy(p + off, tail, bytes);
      if (nstates > 0) memory.copy(s0 + off, tail + 32, bytes);
      if (nstates > 1) memory.copy(s1 + off, tail + 48, bytes);
      if (nstates > 2) memory.copy(s2 + off, tail + 64, bytes);
    }
    if (am0 > a0) a0 = am0;
    if (am1 > a1) a1 = am1;
    if (am2 > a2) a2 = am2;
    u += normU;
    q += normP;
  }
  am0 = a0;
  am1 = a1;
  am2 = a2;
  normU = u;
  normP = q;
}

/**
 * Float32 view of state k for block b: the dequantized block in scratch (8-bit) or the state's
 * own values (32-bit); states the rule does not have point at zeroed tail scratch.
 */
@inline function stateBlock(desc: usize, k: i32, nstates: i32, eight: bool, b: i32, start: i32, len: i32, scratch: usize): usize {
  if (k >= nstates) return scratch + S_TAIL + 32 + 16 * <usize>k;
  const data = <usize>di(desc, D_DATA + k);
  if (!eight) return data + (<usize>start << 2);
  const sp = scratch + S_STATES + <usize>k * MAX_BLOCK * 4;
  const absmax = load<f32>(<usize>di(desc, D_ABSMAX + k) + (<usize>b << 2));
  dequantizeBlock(data + <usize>start, len, absmax, <usize>di(desc, D_TABLE + k) + T_MAP, sp);
  return sp;
}

/**
 * Fused-decode setup of state k for block b (float32 mode, 8-bit): the update reads the old
 * values from the codes (fcK), only the last len % 4 are decoded into scratch for the tail;
 * returns the scratch where the new values go.
 */
function fusedState(desc: usize, k: i32, nstates: i32, b: i32, start: i32, len: i32, scratch: usize): usize {
  if (k >= nstates) return scratch + S_TAIL + 32 + 16 * <usize>k;
  const codes = <usize>di(desc, D_DATA + k) + <usize>start;
  const absmax = load<f32>(<usize>di(desc, D_ABSMAX + k) + (<usize>b << 2));
  const map = <usize>di(desc, D_TABLE + k) + T_MAP;
  const sp = scratch + S_STATES + <usize>k * MAX_BLOCK * 4;
  for (let j = len & ~3; j < len; j++) {
    store<f32>(sp + (<usize>j << 2), load<f32>(map + (<usize>load<u8>(codes + <usize>j) << 2)) * absmax);
  }
  if (k == 0) {
    fc0 = codes;
    fam0 = absmax;
    fmap0 = map;
  } else if (k == 1) {
    fc1 = codes;
    fam1 = absmax;
    fmap1 = map;
  } else {
    fc2 = codes;
    fam2 = absmax;
    fmap2 = map;
  }
  return sp;
}

/** Re-encodes state k of block b from scratch with the block's new absmax. */
@inline function encodeState(desc: usize, k: i32, b: i32, start: i32, len: i32, sp: usize, absmaxIn: f32): void {
  // Zero the padding so the 4-wide tail of quantizeBlock reads zeros.
  for (let j = len; (j & 3) != 0; j++) store<f32>(sp + (<usize>j << 2), 0);
  let absmax = absmaxIn;
  if (absmax == Infinity) {
    // A state overflowed float32: saturate the block at ±FLT_MAX, as Blockwise8State.store does.
    const hi = f32x4.splat(F32.MAX_VALUE);
    const lo = f32x4.splat(-F32.MAX_VALUE);
    for (let j = 0; j < len; j += 4) {
      const q = sp + (<usize>j << 2);
      v128.store(q, f32x4.max(lo, f32x4.min(hi, v128.load(q))));
    }
    absmax = absmaxOf(sp, (len + 3) & ~3);
  }
  quantizeBlockF(sp, len, <usize>di(desc, D_DATA + k) + <usize>start, <usize>di(desc, D_TABLE + k), absmax);
  store<f32>(<usize>di(desc, D_ABSMAX + k) + (<usize>b << 2), absmax);
}

/**
 * Runs chunk `chunk` of the job described at `desc`: blocks [chunk·B/C, (chunk+1)·B/C) of the
 * tensor's B blocks, C = number of chunks. Each block is one fused pass (decode, update, encode).
 */
export function run(desc: usize, chunk: i32): void {
  const op = di(desc, D_OP);
  const rule = di(desc, D_RULE);
  const n = di(desc, D_N);
  const bs = di(desc, D_BLOCK);
  const eight = di(desc, D_BITS) == 8;
  const nstates = di(desc, D_NSTATES);
  const chunks = di(desc, D_CHUNKS);
  const blocks = (n + bs - 1) / bs;
  const b0 = <i32>((<i64>chunk * <i64>blocks) / <i64>chunks);
  const b1 = <i32>((<i64>(chunk + 1) * <i64>blocks) / <i64>chunks);
  const scratch = <usize>di(desc, D_SCRATCH) + <usize>chunk * <usize>SCRATCH_BYTES;
  const tail = scratch + S_TAIL;
  const param = <usize>di(desc, D_PARAM);
  const grad = <usize>di(desc, D_GRAD);
  const norms = <usize>di(desc, D_NORMS);
  const fused = eight && di(desc, D_FLOAT32) != 0;
  fc0 = 0;
  fc1 = 0;
  fc2 = 0;
  for (let b = b0; b < b1; b++) {
    const start = b * bs;
    const len = min(bs, n - start);
    const off = <usize>start << 2;
    let s0: usize, s1: usize, s2: usize;
    if (fused) {
      s0 = fusedState(desc, 0, nstates, b, start, len, scratch);
      s1 = fusedState(desc, 1, nstates, b, start, len, scratch);
      s2 = fusedState(desc, 2, nstates, b, start, len, scratch);
    } else {
      s0 = stateBlock(desc, 0, nstates, eight, b, start, len, scratch);
      s1 = stateBlock(desc, 1, nstates, eight, b, start, len, scratch);
      s2 = stateBlock(desc, 2, nstates, eight, b, start, len, scratch);
    }
    updateAny(desc, rule, op, len, param + off, grad + off, s0, s1, s2, tail, nstates);
    if (op == 2) {
      store<f64>(norms + (<usize>b << 4), normU);
      store<f64>(norms + (<usize>b << 4) + 8, normP);
      continue;
    }
    if (!eight) continue;
    const a0 = am0;
    const a1 = am1;
    const a2 = am2;
    if (nstates > 0) encodeState(desc, 0, b, start, len, s0, a0);
    if (nstates > 1) encodeState(desc, 1, b, start, len, s1, a1);
    if (nstates > 2) encodeState(desc, 2, b, start, len, s2, a2);
  }
}

/**
 * Standalone block-wise quantization of n float32 values (quantizeBlockwise): src must be
 * readable up to a multiple of 4 past n (the JS side pads), codes and absmax written.
 */
export function quantize(src: usize, n: i32, blockSize: i32, codes: usize, absmaxOut: usize, tab: usize, scratch: usize): void {
  const blocks = (n + blockSize - 1) / blockSize;
  for (let b = 0; b < blocks; b++) {
    const start = b * blockSize;
    const len = min(blockSize, n - start);
    const s = src + (<usize>start << 2);
    let a: f32;
    if ((len & 3) == 0) {
      a = absmaxOf(s, len);
      quantizeBlock(s, len, codes + <usize>start, tab, a);
    } else {
      // Partial last block: copy into zero-padded scratch so the 4-wide tail reads zeros.
      memory.fill(scratch, 0, (<usize>(len + 3) & ~3) << 2);
      memory.copy(scratch, s, <usize>len << 2);
      a = absmaxOf(scratch, len);
      quantizeBlock(scratch, len, codes + <usize>start, tab, a);
    }
    store<f32>(absmaxOut + (<usize>b << 2), a);
  }
}

/** Standalone block-wise dequantization: out[i] = map[codes[i]] × absmax[block]. */
export function dequantize(codes: usize, n: i32, blockSize: i32, absmax: usize, map: usize, out: usize, scratch: usize): void {
  const blocks = (n + blockSize - 1) / blockSize;
  for (let b = 0; b < blocks; b++) {
    const start = b * blockSize;
    const len = min(blockSize, n - start);
    const a = load<f32>(absmax + (<usize>b << 2));
    if ((len & 3) == 0) dequantizeBlock(codes + <usize>start, len, a, map, out + (<usize>start << 2));
    else {
      dequantizeBlock(codes + <usize>start, len, a, map, scratch);
      memory.copy(out + (<usize>start << 2), scratch, <usize>len << 2);
    }
  }
}

/** Scratch bytes each thread needs (the JS side allocates chunks × this). */
export function scratchBytes(): i32 {
  return SCRATCH_BYTES;
}
