/**
 * Exact encode tables for the WGSL encoders (the 8-bit kernels with the engine option `exactEncode`): the nearest code
 * of a float32 magnitude a in [0, 1] from its bits, with two lookups and one integer compare,
 * equal to the reference (`nearestCode` + nudge, src/quant/blockwise.ts) for EVERY float32.
 *
 * Level 1, per exponent E in [emin, 127]: `base | shift << 16`. Level 2, per interval of
 * 2^shift bit patterns: (codeLow | codeHigh << 8, threshold bits): the code is codeHigh when
 * bits >= threshold, else codeLow (threshold 0xffffffff: no change inside the interval).
 * WGSL sketch:
 *   let b = u32(clamp(bitcast<i32>(a), emin << 23, 0x3f800000));
 *   let h = tL1[(b >> 23u) - emin];
 *   let e = tL2[(h & 0xffffu) + ((b & 0x7fffffu) >> (h >> 16u))];
 *   code = select(e.x & 255u, e.x >> 8u, b >= e.y);
 * Built from the reference function itself: each interval's end points are encoded, and since
 * the code is monotone in a, equal ends mean one code over the interval and ends one apart mean
 * one switch, found by bisection over the bit patterns. An interval with more is split (more
 * mantissa bits for its exponent).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The float32 with bit pattern b. */
export function floatOfBits(b: number): number {
  u32[0] = b;
  return f32[0];
}

export interface CodeTable {
  /** Smallest exponent field with its own level-1 entry; smaller magnitudes are clamped to 2^(emin-127). */
  emin: number;
  l1: Uint32Array;
  /** Pairs (codeLow | codeHigh << 8, threshold bits), one pair per interval. */
  l2: Uint32Array;
}

const ONE = 0x3f800000;

/**
 * Tables for the code functions `fs` (each: bit pattern of a magnitude in [0, 1] -> code in
 * 0..255, monotone), sharing one level-1 layout; their level-2 tables follow each other
 * (function i's intervals start at i * (l2.length / 2 / fs.length) pairs).
 */
export function buildCodeTables(fs: ((bits: number) => number)[]): CodeTable {
  // emin: below the first code switch of every function, so clamping tiny values is exact.
  let emin = 126;
  for (const f of fs) {
    const c0 = f(0);
    let lo = 0;
    let hi = ONE;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (f(mid) === c0) lo = mid;
      else hi = mid;
    }
    emin = Math.min(emin, (hi >>> 23) - 1);
  }
  if (emin < 1) throw new Error('code tables: a code switches among denormals');
  const layout: { shift: number; base: number }[] = [];
  let intervals = 0;
  for (let E = emin; E <= 127; E++) {
    let m = 1;
    const fits = (mm: number) => {
      const shift = 23 - mm;
      for (let i = 0; i < 1 << mm; i++) {
        const lo = (E << 23) | (i << shift);
        const hi = lo + (1 << shift) - 1;
        for (const f of fs) if (Math.abs(f(hi) - f(lo)) > 1) return false;
      }
      return true;
    };
    if (E === 127) m = 0; // only 1.0 itself (larger values are clamped to it)
    else while (!fits(m)) m++;
    layout.push({ shift: 23 - m, base: intervals });
    intervals += 1 << m;
  }
  const l1 = Uint32Array.from(layout, (x) => x.base | (x.shift << 16));
  const l2 = new Uint32Array(2 * intervals * fs.length);
  fs.forEach((f, fi) => {
    layout.forEach(({ shift, base }, k) => {
      const E = emin + k;
      const count = E === 127 ? 1 : 1 << (23 - shift);
      for (let i = 0; i < count; i++) {
        const lo = (E << 23) | (i << shift);
        const hi = E === 127 ? lo : lo + (1 << shift) - 1;
        const cLo = f(E === emin && i === 0 ? 0 : lo); // the first interval also holds everything below it
        const cHi = f(hi);
        let thr = 0xffffffff;
        if (cHi !== cLo) {
          let a = lo;
          let b = hi;
          while (b - a > 1) {
            const mid = Math.floor((a + b) / 2);
            if (f(mid) === cLo) a = mid;
            else b = mid;
          }
          thr = b;
        }
        const at = 2 * (fi * intervals + base + i);
        l2[at] = cLo | (cHi << 8);
        l2[at + 1] = thr;
      }
    });
  });
  return { emin, l1, l2 };
}

/** What the WGSL lookup computes, in TypeScript (tests compare it with the reference). */
export function lookupCode(t: CodeTable, fn: number, intervals: number, bits: number): number {
  const b = Math.min(Math.max(bits | 0, t.emin << 23), ONE) >>> 0;
  const h = t.l1[(b >>> 23) - t.emin];
  const at = 2 * (fn * intervals + (h & 0xffff) + ((b & 0x7fffff) >>> (h >>> 16)));
  const e = t.l2[at];
  return b >= t.l2[at + 1] ? e >>> 8 : e & 255;
}

/**
 * The exact tables of both dynamic 8-bit maps, as the fused kernels read them: signed (level 1,
 * then level 2 for positive values, then for negative values with the sign nudge) and unsigned
 * (nearest code; the kernel adds the positive nudge, which needs the unscaled value).
 */
export interface ExactTables {
  signed: CodeTable;
  unsigned: CodeTable;
  /** u32 words: signed l1, signed l2, unsigned l1, unsigned l2. */
  words: Uint32Array;
  offsets: { signedL1: number; signedL2: number; unsignedL1: number; unsignedL2: number };
}

let exact: ExactTables | undefined;

/** Built once from the reference encoder itself (a few ms). */
export function exactTables(signedMap: Float32Array, unsignedMap: Float32Array, nearest: (map: Float32Array, v: number) => number): ExactTables {
  if (exact) return exact;
  const signed = buildCodeTables([
    (b) => nearest(signedMap, floatOfBits(b)),
    (b) => {
      const c = nearest(signedMap, -floatOfBits(b));
      return signedMap[c] >= 0 ? c - 1 : c; // a negative value keeps a negative code
    },
  ]);
  const unsigned = buildCodeTables([(b) => nearest(unsignedMap, floatOfBits(b))]);
  const parts = [signed.l1, signed.l2, unsigned.l1, unsigned.l2];
  const words = new Uint32Array(parts.reduce((s, p) => s + p.length, 0));
  const at: number[] = [];
  parts.reduce((o, p) => (at.push(o), words.set(p, o), o + p.length), 0);
  exact = { signed, unsigned, words, offsets: { signedL1: at[0], signedL2: at[1], unsignedL1: at[2], unsignedL2: at[3] } };
  return exact;
}

/**
 * WGSL of the exact encoders over a tables buffer (`tables`, float32 words) whose exact tables
 * start at word `base`: workgroup copies of the tables the kernel's state signs need, their
 * loader, and encodeSignedX / encodeUnsignedX (x: the value over absmax; v: the value before,
 * whose sign bit picks the nudge as in the reference).
 */
export function exactEncodeWgsl(t: ExactTables, base: number, signs: { signed: boolean; unsigned: boolean }): string {
  const parts: string[] = [];
  const loads: string[] = [];
  const table = (name: string, ct: CodeTable, l1: number, l2: number) => {
    const pairs = ct.l2.length / 2;
    parts.push(`var<workgroup> tL1${name}: array<u32, ${ct.l1.length}>;\nvar<workgroup> tL2${name}: array<vec2<u32>, ${pairs}>;`);
    loads.push(`  for (var i = lid; i < ${ct.l1.length}u; i += 256u) { tL1${name}[i] = bitcast<u32>(tables[${base + l1}u + i]); }
  for (var i = lid; i < ${pairs}u; i += 256u) { tL2${name}[i] = vec2<u32>(bitcast<u32>(tables[${base + l2}u + 2u * i]), bitcast<u32>(tables[${base + l2 + 1}u + 2u * i])); }`);
    // Code of magnitude a in [0, 1] (clamped) through function f (0 or 1) of the table.
    parts.push(`fn lookup${name}(a: f32, f: u32) -> u32 {
  let b = u32(clamp(bitcast<i32>(a), ${ct.emin << 23}, 0x3f800000));
  let h = tL1${name}[(b >> 23u) - ${ct.emin}u];
  let e = tL2${name}[f * ${pairs / (name === 'S' ? 2 : 1)}u + (h & 0xffffu) + ((b & 0x7fffffu) >> (h >> 16u))];
  return select(e.x & 255u, e.x >> 8u, b >= e.y);
}`);
  };
  if (signs.signed) {
    table('S', t.signed, t.offsets.signedL1, t.offsets.signedL2);
    parts.push(`fn encodeSignedX(x: f32, v: f32) -> u32 {
  return lookupS(abs(x), u32(bitcast<u32>(v) > 0x80000000u));
}`);
  }
  if (signs.unsigned) {
    table('U', t.unsigned, t.offsets.unsignedL1, t.offsets.unsignedL2);
    // A positive value never takes the code of 0 (the 'positive' nudge), tested on its bits.
    parts.push(`fn encodeUnsignedX(x: f32, v: f32) -> u32 {
  let q = lookupU(x, 0u);
  let bits = bitcast<u32>(v);
  return select(q, 1u, (q == 0u) & (bits > 0u) & (bits < 0x7f800000u));
}`);
  }
  parts.push(`fn loadExactTables(lid: u32) {\n${loads.join('\n')}\n}`);
  return parts.join('\n');
}
