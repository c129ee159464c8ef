/**
 * bitopt CPU kernels, AssemblyScript → WebAssembly (128-bit SIMD, shared memory).
 *
 * The JS side (src/kernels/cpu/wasm-*.ts) owns the memory: it allocates every array, writes a
 * job descriptor and calls `run(desc, chunk)` on one or more threads, each over a block-aligned
 * chunk of the tensor. Nothing here allocates, so every instance (one per thread) is stateless
 * apart from a few globals.
 *
 * The maths is the reference kernel's (src/kernels/cpu/reference.ts, src/optim/rules/*.ts) in
 * float32. Block-wise quantization follows src/quant/blockwise.ts exactly: r = x / absmax as a
 * float32 division, then the nearest-code search via a lookup table built on the JS side from
 * the reference `nearestCode` (so codes are identical for identical r). The table is indexed by
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
const D_FLOAT32: i32 = 20; // 1: float32 arithmetic (fast mode), 0: float64 as the reference

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


// ---- fast mode: float32 arithmetic, four elements at a time ------------------------------------
// Same formulas with float32 coefficients and float32 intermediates: states and parameters
// agree with the reference to a few ulps (not bit for bit), at about twice the speed of the
// float64 path. Opt-in (WasmKernelOptions.precision = 'float32').

@inline function dfs(desc: usize, slot: i32): v128 {
  return f32x4.splat(<f32>df(desc, slot));
}
@inline function fin4(g: v128): v128 {
  return f32x4.eq(f32x4.sub(g, g), f32x4.splat(0));
}
@inline function sign4(x: v128): v128 {
  const one = f32x4.splat(1);
  return v128.bitselect(one, v128.bitselect(f32x4.neg(one), x, f32x4.lt(x, f32x4.splat(0))), f32x4.gt(x, f32x4.splat(0)));
}
@inline function sq4(acc: v128, x: v128): v128 {
  const lo = f64x2.promote_low_f32x4(x);
  const hi = f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 0, 1));
  return f64x2.add(acc, f64x2.add(f64x2.mul(lo, lo), f64x2.mul(hi, hi)));
}

function updateRun32(desc: usize, rule: i32, mode: i32, n: i32, p: usize, g: usize, s0: usize, s1: usize, s2: usize): void {
  const zero = f32x4.splat(0);
  const gs = dfs(desc, F_GRADSCALE);
  const lr = dfs(desc, F_LR);
  const wd = dfs(desc, F_WD);
  const decay = dfs(desc, F_DECAY);
  const useDecay = df(desc, F_USE_DECAY) != 0;
  let m0 = zero;
  let m1 = zero;
  let m2 = zero;
  let nu = f64x2.splat(0);
  let np = f64x2.splat(0);
  const end = <usize>n << 2;
  if (rule == RULE_ADAM || rule == RULE_LAMB) {
    const b1 = dfs(desc, F_B1);
    const omb1 = dfs(desc, F_OMB1);
    const b2 = dfs(desc, F_B2);
    const omb2 = dfs(desc, F_OMB2);
    const stepSize = dfs(desc, F_STEPSIZE);
    const epsHat = dfs(desc, F_EPS);
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const gv = f32x4.mul(v128.load(g + o), gs);
      const fin = fin4(gv);
      const m = f32x4.add(f32x4.mul(b1, v128.load(s0 + o)), f32x4.mul(omb1, gv));
      const v = f32x4.add(f32x4.mul(b2, v128.load(s1 + o)), f32x4.mul(f32x4.mul(omb2, gv), gv));
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
    const momentum = dfs(desc, F_MOMENTUM);
    const first = df(desc, F_FIRST) != 0;
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const gv = f32x4.mul(v128.load(g + o), gs);
      const fin = fin4(gv);
      const gd = f32x4.add(gv, f32x4.mul(wd, pv));
      const m = first ? gd : f32x4.add(f32x4.mul(momentum, v128.load(s0 + o)), gd);
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
    const alpha = dfs(desc, F_ALPHA);
    const oma = dfs(desc, F_OMALPHA);
    const eps = dfs(desc, F_EPS);
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const gv = f32x4.mul(v128.load(g + o), gs);
      const fin = fin4(gv);
      const gd = f32x4.add(gv, f32x4.mul(wd, pv));
      const sv = v128.load(s0 + o);
      const v = isRms ? f32x4.add(f32x4.mul(alpha, sv), f32x4.mul(f32x4.mul(oma, gd), gd)) : f32x4.add(sv, f32x4.mul(gd, gd));
      const vk = v128.and(v, fin);
      v128.store(s0 + o, vk);
      m0 = f32x4.pmax(m0, f32x4.abs(vk));
      const pn = f32x4.sub(pv, f32x4.div(f32x4.mul(lr, gd), f32x4.add(f32x4.sqrt(v), eps)));
      v128.store(p + o, v128.bitselect(pn, pv, fin));
    }
  } else if (rule == RULE_LION) {
    const b1 = dfs(desc, F_B1);
    const omb1 = dfs(desc, F_OMB1);
    const b2 = dfs(desc, F_B2);
    const omb2 = dfs(desc, F_OMB2);
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const gv = f32x4.mul(v128.load(g + o), gs);
      const fin = fin4(gv);
      const m = v128.load(s0 + o);
      const u = sign4(f32x4.add(f32x4.mul(b1, m), f32x4.mul(omb1, gv)));
      const mk = v128.and(f32x4.add(f32x4.mul(b2, m), f32x4.mul(omb2, gv)), fin);
      v128.store(s0 + o, mk);
      m0 = f32x4.pmax(m0, f32x4.abs(mk));
      const pn = f32x4.sub(f32x4.mul(pv, decay), f32x4.mul(lr, u));
      v128.store(p + o, v128.bitselect(pn, pv, fin));
    }
  } else if (rule == RULE_ADEMAMIX) {
    const b1 = dfs(desc, F_B1);
    const omb1 = dfs(desc, F_OMB1);
    const b2 = dfs(desc, F_B2);
    const omb2 = dfs(desc, F_OMB2);
    const b3 = dfs(desc, F_B3);
    const omb3 = dfs(desc, F_OMB3);
    const alpha = dfs(desc, F_ALPHA);
    const c1 = dfs(desc, F_C1);
    const sqrtC2 = dfs(desc, F_SQRTC2);
    const eps = dfs(desc, F_EPS);
    for (let o: usize = 0; o < end; o += 16) {
      const pv = v128.load(p + o);
      const gv = f32x4.mul(v128.load(g + o), gs);
      const fin = fin4(gv);
      const m = f32x4.add(f32x4.mul(b1, v128.load(s0 + o)), f32x4.mul(omb1, gv));
      const v = f32x4.add(f32x4.mul(b2, v128.load(s1 + o)), f32x4.mul(f32x4.mul(omb2, gv), gv));
      const ms = f32x4.add(f32x4.mul(b3, v128.load(s2 + o)), f32x4.mul(omb3, gv));
      const mk = v128.and(m, fin);
      const vk = v128.and(v, fin);
      const sk = v128.and(ms, fin);
      v128.store(s0 + o, mk);
      v128.store(s1 + o, vk);
      v128.store(s2 + o, sk);
      m0 = f32x4.pmax(m0, f32x4.abs(mk));
      m1 = f32x4.pmax(m1, f32x4.abs(vk));
      m2 = f32x4.pmax(m2, f32x4.abs(sk));
      const num = f32x4.mul(lr, f32x4.add(f32x4.div(m, c1), f32x4.mul(alpha, ms)));
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
  quantizeBlock(sp, len, <usize>di(desc, D_DATA + k) + <usize>start, <usize>di(desc, D_TABLE + k), absmax);
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
  for (let b = b0; b < b1; b++) {
    const start = b * bs;
    const len = min(bs, n - start);
    const off = <usize>start << 2;
    const s0 = stateBlock(desc, 0, nstates, eight, b, start, len, scratch);
    const s1 = stateBlock(desc, 1, nstates, eight, b, start, len, scratch);
    const s2 = stateBlock(desc, 2, nstates, eight, b, start, len, scratch);
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
