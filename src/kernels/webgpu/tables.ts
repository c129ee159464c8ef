/**
 * Lookup tables the fused kernels keep in workgroup memory: both dynamic maps (to decode) and
 * the midpoints between neighbouring magnitudes (to encode). Encoding does not binary-search:
 * the dynamic map's structure gives the decade from six comparisons and the index inside the
 * decade from one multiply-add; that estimate is within one of the nearest code, and two
 * midpoint comparisons settle it (see `nearestCodeWgsl`).
 */
import { stateMap } from '../../optim/state.js';
import { nearestCode } from '../../quant/blockwise.js';
import { exactEncodeWgsl, exactTables, type ExactTables } from './code-tables.js';

/**
 * Layout of the tables buffer (float32 words): both maps, then for each estimate e the pair
 * (midpoint below e, midpoint above e) as a vec2, signed at pair 0.., unsigned at pair 128..;
 * then, from word `exact`, the exact encode tables (u32 bits, ./code-tables.ts).
 */
export const TABLES = { mapSigned: 0, mapUnsigned: 256, pairs: 512, pairCount: 384, words: 512 + 2 * 384, exact: 512 + 2 * 384 } as const;

/** The exact encode tables of the two dynamic maps (built once). */
export function exactCodeTables(): ExactTables {
  return exactTables(stateMap('signed'), stateMap('unsigned'), nearestCode);
}

/** Code of value 0: a fresh zero-filled code buffer must mean "all states 0", so codes are stored XOR this. */
export const ZERO_CODE = { signed: 127, unsigned: 0 } as const;

/**
 * Checks that the state maps have the layout the WGSL encoder assumes: signed = 127 negated
 * magnitudes, 0 at 127, 127 magnitudes, 1.0 at 255; decade d (values in [1e(d-7), 1e(d-6)))
 * holds 2^d signed / 2^(d+1) unsigned values.
 */
function checkStructure(): void {
  const s = stateMap('signed');
  const u = stateMap('unsigned');
  const fail = (what: string) => {
    throw new Error(`webgpu: the dynamic map does not have the expected structure (${what})`);
  };
  if (s[127] !== 0 || s[255] !== 1 || u[0] !== 0 || u[255] !== 1) fail('zero/one positions');
  for (let q = 1; q < 128; q++) if (s[127 - q] !== -s[127 + q]) fail(`signed symmetry at ${q}`);
  for (let d = 0; d < 7; d++) {
    const lo = 10 ** (d - 7);
    const hi = 10 ** (d - 6);
    for (let k = 0; k < 1 << d; k++) {
      const v = s[127 + (1 << d) + k];
      if (!(v > lo && v < hi)) fail(`signed decade ${d}`);
    }
    for (let k = 0; k < 2 << d; k++) {
      const v = u[(2 << d) - 1 + k];
      if (!(v > lo && v < hi)) fail(`unsigned decade ${d}`);
    }
  }
}

let cached: Float32Array | undefined;

/** The tables buffer's contents (896 float32, then the exact tables' u32 words). */
export function tableData(): Float32Array {
  if (cached) return cached;
  checkStructure();
  const s = stateMap('signed');
  const u = stateMap('unsigned');
  const exact = exactCodeTables().words;
  const t = new Float32Array(TABLES.exact + exact.length);
  new Uint32Array(t.buffer).set(exact, TABLES.exact);
  t.set(s, TABLES.mapSigned);
  t.set(u, TABLES.mapUnsigned);
  // Midpoint between magnitudes q and q+1 (signed magnitudes are s[127..255]).
  const midS = (q: number) => (s[127 + q] + s[128 + q]) / 2;
  const midU = (q: number) => (u[q] + u[q + 1]) / 2;
  for (let e = 1; e <= 127; e++) t.set([midS(e - 1), midS(e)], TABLES.pairs + 2 * e);
  for (let e = 1; e <= 254; e++) t.set([midU(e - 1), midU(e)], TABLES.pairs + 2 * (128 + e));
  cached = t;
  return t;
}

/**
 * WGSL: workgroup tables plus the encoder. `tMap` holds both maps (signed at 0, unsigned at
 * 256), `tMid` both midpoint lists (signed at 0, unsigned at 128).
 */
export const nearestCodeWgsl = /* wgsl */ `
var<workgroup> tMap: array<f32, 512>;
var<workgroup> tPair: array<vec2<f32>, 384>;

fn loadTables(lid: u32) {
  for (var i = lid; i < 512u; i += 256u) { tMap[i] = tables[i]; }
  for (var i = lid; i < 384u; i += 256u) { tPair[i] = vec2<f32>(tables[512u + 2u * i], tables[513u + 2u * i]); }
}

// Nearest magnitude index of a in [0, 1]: 0 is 0, then decade d's values (2^d per decade
// when signed, 2^(d+1) unsigned), then 1.0. The decade comes from log10 (an estimate: near a
// power of ten it may be one off), the index inside the decade from one multiply-add; the
// estimate is within one of the nearest magnitude and one vec2 of neighbouring midpoints
// settles it. Branch-free, so no divergence reaches the kernel's subgroup operations.
// (A variant with six comparisons for the decade instead of log2/exp2 measured 5-10% slower
// on an H100: the kernel is instruction-bound there, and the special-function unit is not.)
fn nearestMagnitude(a: f32, signedMap: bool) -> u32 {
  let l2 = log2(max(a, 1e-30));
  let d = u32(clamp(floor(l2 * 0.30102999566398120) + 7.0, 0.0, 6.0));
  // a * 10^(6-d): the value's fraction in [0.1, 1) inside its decade.
  let scaled = exp2(l2 + f32(6u - d) * 3.321928094887362);
  let n = select(2u << d, 1u << d, signedMap);
  let off = select((2u << d) - 1u, 1u << d, signedMap);
  let j = clamp(round((scaled - 0.1) * (f32(n) / 0.9) - 0.5), 0.0, f32(n - 1u));
  let e = off + u32(j);
  let mid = tPair[select(128u, 0u, signedMap) + e];
  return e - 1u + u32(a > mid.x) + u32(a > mid.y);
}

// Code of x (already divided by absmax, in [-1, 1]). Signed codes keep the value's sign.
fn encodeSigned(x: f32) -> u32 {
  let q = nearestMagnitude(abs(x), true);
  return select(127u + q, 127u - clamp(q, 1u, 127u), x < 0.0);
}
// Unsigned optimizer states: v is the value before the division by absmax. A positive value
// never takes the code of 0, even where x underflowed or was flushed to 0 (the 'positive'
// nudge of src/quant/blockwise.ts: a second moment decoding to 0 makes m / (sqrt(v) + eps)
// huge). v > 0 is tested on its bits (finite, > +0) so that a denormal v counts on GPUs that
// flush denormals in comparisons.
fn encodeUnsigned(x: f32, v: f32) -> u32 {
  let q = nearestMagnitude(x, false);
  let bits = bitcast<u32>(v);
  return select(q, 1u, (q == 0u) & (bits > 0u) & (bits < 0x7f800000u));
}
`;

/**
 * WGSL: the decode maps (`tMap`, as above) and the exact encoders encodeSignedX / encodeUnsignedX
 * (./code-tables.ts) of the state signs a kernel has; `loadTables` fills both.
 */
export function exactCodeWgsl(signs: { signed: boolean; unsigned: boolean }): string {
  return `var<workgroup> tMap: array<f32, 512>;
${exactEncodeWgsl(exactCodeTables(), TABLES.exact, signs)}
fn loadTables(lid: u32) {
  for (var i = lid; i < 512u; i += 256u) { tMap[i] = tables[i]; }
  loadExactTables(lid);
}`;
}
