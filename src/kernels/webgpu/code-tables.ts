/**
 * Exact encode tables for the WGSL encoders (not yet wired into template.ts): the nearest code
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
