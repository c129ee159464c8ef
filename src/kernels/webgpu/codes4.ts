/**
 * WGSL for the 4-bit codes (format 'blockwise4', docs/architecture.md §1.5), generated from the
 * CPU maps (`stateMap4`) so the two cannot drift. Encoding is exact given the scaled value
 * x = v / absmax: the nearest code with the reference's tie rule (`nearestCode`: ties go to the
 * lower code) and its sign nudge.
 *
 * - Unsigned (the zero-free linear map (i + 1) / 16): code = clamp(ceil(16x - 1.5), 0, 15).
 *   16x is exact and so is 16x - 1.5 where it matters (x >= 3/32: both terms are multiples of
 *   16x's ulp), and ceil(t - 1/2) is round-half-down, the reference's tie rule.
 * - Signed (the dynamic map, symmetric but for 1.0, which has no negative twin): the nearest
 *   magnitude q in {0, m1..m7, 1} is the number of thresholds below |x| (found by a binary search). A threshold is the
 *   midpoint of two neighbouring magnitudes rounded DOWN to float32, so |x| > t is exactly
 *   |x| > midpoint. For a negative value the tie goes to the larger magnitude (the lower code),
 *   so where the midpoint is a float32 the threshold is its predecessor (|x| > pred ⇔ |x| >= mid).
 *   Then code = 7 + q for x >= 0; 7 - clamp(q, 1, 7) for x < 0 (no -1 level: q 8 is code 0; q 0
 *   is the 'sign' nudge to the smallest negative level). The sign is the unscaled value's, as
 *   in the reference, tested on its bits (a flushed denormal still counts as negative).
 */
import { stateMap4 } from '../../codecs/blockwise4.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}
function ofBits(b: number): number {
  u32[0] = b;
  return f32[0];
}
const lit = (x: number) => `bitcast<f32>(0x${bitsOf(x).toString(16)}u)`;

/** The signed map's magnitudes [0, m1..m7, 1] and the two threshold lists (positive, negative values). */
export function signedThresholds4(): { magnitudes: number[]; pos: number[]; neg: number[] } {
  const map = stateMap4('signed');
  if (map.length !== 16 || map[7] !== 0 || map[15] !== 1) throw new Error('webgpu: the 4-bit signed map does not have the expected layout (0 at 7, 1 at 15)');
  for (let q = 1; q <= 7; q++) if (map[7 - q] !== -map[7 + q] || !(map[7 + q] > map[6 + q])) throw new Error(`webgpu: the 4-bit signed map is not symmetric at ${q}`);
  const magnitudes = Array.from(map.subarray(7));
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < 8; i++) {
    const mid = (magnitudes[i] + magnitudes[i + 1]) / 2; // exact in float64
    let t = Math.fround(mid);
    if (t > mid) t = ofBits(bitsOf(t) - 1); // positive floats order like their bits
    pos.push(t);
    neg.push(t === mid ? ofBits(bitsOf(t) - 1) : t);
  }
  return { magnitudes, pos, neg };
}

/** Module-scope WGSL: the decode table (workgroup memory, filled by `loadTables4`) and both encoders. */
export function codes4Wgsl(): string {
  const map = stateMap4('signed');
  const unsigned = stateMap4('unsigned');
  for (let i = 0; i < 16; i++) if (unsigned[i] !== (i + 1) / 16) throw new Error('webgpu: the 4-bit unsigned map is not (i + 1) / 16');
  const { pos, neg } = signedThresholds4();
  // Threshold i for this lane's sign (one select only where the two lists differ).
  const th = (i: number) => (pos[i] === neg[i] ? `vec4<f32>(${lit(pos[i])})` : `select(vec4<f32>(${lit(pos[i])}), vec4<f32>(${lit(neg[i])}), neg)`);
  return /* wgsl */ `
const MAP4 = array<f32, 16>(${Array.from(map, lit).join(', ')});
var<workgroup> tMap4: array<f32, 16>;
fn loadTables4(lid: u32) {
  if (lid < 16u) { tMap4[lid] = MAP4[lid]; }
}
// Four signed codes (nibbles of c from bit 0) times absmax.
fn decode4s(c: u32, am: f32) -> vec4<f32> {
  return vec4<f32>(tMap4[c & 15u], tMap4[(c >> 4u) & 15u], tMap4[(c >> 8u) & 15u], tMap4[(c >> 12u) & 15u]) * am;
}
// Unsigned: (code + 1) / 16 · absmax, one rounding as the reference (am / 16 is exact).
fn decode4u(c: u32, am: f32) -> vec4<f32> {
  let q = (vec4<u32>(c) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
  return (vec4<f32>(q) + 1.0) * (am * 0.0625);
}
// x: values divided by absmax; v: the values before (their sign picks the tie rule and the nudge).
// q = how many thresholds lie below |x|. A binary search over t0..t6 finds 4·c1 + 2·c2 + c3 of
// them; t7 lies above t6, so it can only raise a count of 7 to 8. Four compares instead of eight.
fn encode4s(x: vec4<f32>, v: vec4<f32>) -> vec4<u32> {
  let a = abs(x);
  let neg = bitcast<vec4<u32>>(v) > vec4<u32>(0x80000000u);
  let c1 = a > ${th(3)};
  let c2 = a > select(${th(1)}, ${th(5)}, c1);
  let c3 = a > select(select(${th(0)}, ${th(2)}, c2), select(${th(4)}, ${th(6)}, c2), c1);
  let q = select(vec4<u32>(0u), vec4<u32>(4u), c1) + select(vec4<u32>(0u), vec4<u32>(2u), c2) + vec4<u32>(c3) + vec4<u32>(a > ${th(7)});
  return select(vec4<u32>(7u) + q, vec4<u32>(7u) - clamp(q, vec4<u32>(1u), vec4<u32>(7u)), neg);
}
fn encode4u(x: vec4<f32>) -> vec4<u32> {
  return vec4<u32>(clamp(ceil(x * 16.0 - 1.5), vec4<f32>(0.0), vec4<f32>(15.0)));
}
// Two vec4s of codes into one word: nibble i is element i (the CPU's byte layout, little-endian).
fn pack8x4(lo: vec4<u32>, hi: vec4<u32>) -> u32 {
  let l = lo << vec4<u32>(0u, 4u, 8u, 12u);
  let h = hi << vec4<u32>(16u, 20u, 24u, 28u);
  return (l.x | l.y) | (l.z | l.w) | (h.x | h.y) | (h.z | h.w);
}
`;
}
