/**
 * The one fused-kernel template: every rule's WGSL is this template plus the rule's snippet
 * (./rules.ts). A workgroup of 256 threads walks over tiles (grid-stride); a tile is 1024
 * elements (or one block when blocks are larger), each thread owns one vec4 per 1024 elements.
 * 8-bit pass per tile: load param, grad and one u32 of 4 codes per state; decode through the
 * map in workgroup memory; run the rule; store the param; block absmax by subgroupMax (when
 * available) and a workgroup atomicMax on the float bits (non-negative floats order like
 * their bits); one barrier; re-encode and store codes and absmax. Three reduction slots
 * rotate so that a tile needs a single barrier. 4-bit (and 8-bit with `pairs`): each thread
 * owns two vec4s of one block per 2048 elements, spread (lane j of a block's lanes: its vec4s
 * j and j + P/2, so a warp's accesses are contiguous runs; 4-bit without subgroups: neighbouring
 * vec4s 2j, 2j + 1); where a block's threads fit in every subgroup the block absmax is a
 * subgroupShuffleXor butterfly instead: no atomics and no barrier.
 *
 * Buffer layouts (all per tile, so a chunk of whole tiles is one contiguous range per buffer;
 * sized to the tensor, not to whole tiles: see ./layout.ts):
 * - 8-bit codes: u32 words, block b's state k at words (b*S + k)*(blockSize/4); byte i of a
 *   word is element 4w+i; stored XOR the zero code so a zero-filled buffer is a zero state.
 *   Only the tensor's ceil(n/blockSize) blocks exist: threads of blocks past them read state 0
 *   and write nothing.
 * - 8-bit absmax: f32 at b*S + k.
 * - 4-bit codes: a thread's 8 elements are one u32 (nibble i = element 8w+i: the CPU's packed
 *   bytes, little-endian, not XORed: a zero-filled buffer decodes to 0 through its zero
 *   absmax). Block b's state k at words (b*S + k)*(blockSize/8); absmax as 8-bit. The codecs'
 *   WGSL (exact encoders, decode table) is ./codes4.ts.
 * - 32-bit states: vec4s, tile t's state k at t*S*256 + k*stride, stride = min(256, vec4s left
 *   in the tensor from tile t): whole tiles interleave runs of 256 vec4s, the last tile runs of
 *   its own length. Lanes past the tensor write no state (an out-of-bounds write would be
 *   clamped by robustness onto a real element) and read their tile's first lane instead.
 */
import type { StateSign } from '../../optim/rule.js';
import type { WgslRule } from './rules.js';
import { codes4Wgsl } from './codes4.js';
import { exactCodeWgsl, nearestCodeWgsl, ZERO_CODE } from './tables.js';

export const WORKGROUP = 256;

/**
 * Profiling cuts, for the device bench only: packages/demo/scripts/bundle-device-bench.mjs
 * replaces this line with the comma-separated list in BITOPT_WGSL_CUTS, so the library itself
 * always builds the full kernel. Each cut swaps one piece of the 8-/4-bit update for the
 * cheapest stand-in that keeps every load and store (the results are wrong, the traffic is not):
 * decode (unpack4x8unorm instead of the map lookup), encode (pack4x8unorm instead of the
 * nearest code), reduce (the thread's own max instead of the block's: no atomics, subgroup ops
 * or barrier), rule (one multiply-add per state), stwrite (no code or absmax stores), notables
 * (no table load and barrier at the start), nospread (the pre-2026-12-03 pairing of neighbouring
 * vec4s, to time it against spread pairing in the same run).
 */
const PROFILE_CUTS: readonly string[] = [];
/** Fixed uniform words before the rule's own: n, numTiles, partialBase, partialCount, useTrust, gradScale, lr, maxUnorm, percentile. */
export const FIXED_UNIFORMS = 9;
/** Percentile-clipping buffer (float32 words): [0] gradient scale, [1] count (u32), history at 4..103, norm partials from 104. */
export const CLIP = { scale: 0, count: 1, history: 4, size: 100, partials: 104 } as const;

export interface KernelShape {
  bits: 4 | 8 | 32;
  /** 8- and 4-bit block size (ignored for 32-bit). */
  blockSize: number;
  states: readonly StateSign[];
  /** Use subgroupMax for block absmax (only when a subgroup never spans two blocks). */
  subgroups: boolean;
  /** 8-bit: each thread owns two vec4s of one block per 2048 elements (as 4-bit; same buffer layout). */
  pairs?: boolean;
  /** 8-bit: encode through the exact tables (./code-tables.ts) instead of the log2 estimate. */
  exact?: boolean;
  /**
   * Block absmax by a subgroupShuffleXor butterfly, with no workgroup memory and no barrier (only
   * when a block's threads, blockSize/8 paired or /4, fit in the smallest subgroup).
   */
  shuffle?: boolean;
  /** 8-bit: vec4s per thread per tile (more loads in flight per barrier); 4-bit: words (pairs of vec4s). Default 1. */
  unroll?: number;
  /** Percentile clipping: the gradient scale comes from the clip buffer (binding 7). */
  clip?: boolean;
}

/** Elements per tile. */
export function tileSize(shape: KernelShape): number {
  if (shape.bits === 32) return 1024;
  return Math.max(shape.blockSize, (shape.bits === 4 || shape.pairs ? 2048 : 1024) * (shape.unroll ?? 1));
}

/** Blocks per tile (8- and 4-bit). */
export function blocksPerTile(shape: KernelShape): number {
  return shape.bits === 32 ? 0 : tileSize(shape) / shape.blockSize;
}

function uniformStruct(rule: WgslRule): string {
  const fields = rule.uniformNames.map((n) => `  ${n}: f32,`).join('\n');
  return `struct U {
  n: u32, numTiles: u32, partialBase: u32, partialCount: u32,
  useTrust: u32, gradScale: f32, lr: f32, maxUnorm: f32, percentile: f32,
${fields}
}
@group(0) @binding(0) var<uniform> u: U;`;
}

const finiteWgsl = /* wgsl */ `
const F32_MAX = 0x1.fffffep+127f;
fn finite4(x: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7f800000u)) != vec4<u32>(0x7f800000u);
}
fn absMax4(x: vec4<f32>) -> f32 {
  let a = abs(x);
  return max(max(a.x, a.y), max(a.z, a.w));
}`;

export type Pass = 'update' | 'norm';

/** WGSL of the fused update pass (or the LAMB/LARS norm pass) for one rule and state shape. */
export function fusedKernel(rule: WgslRule, shape: KernelShape, pass: Pass): string {
  const S = shape.states.length;
  const eight = shape.bits === 8;
  const four = shape.bits === 4;
  const quant = eight || four;
  const tile = tileSize(shape);
  const R = tile / 1024; // vec4s per thread per tile
  // A group: the vec4s of a thread that share a block and its absmax reduction. Paired (4-bit,
  // or 8-bit with `pairs`): two vec4s of one block, 8 elements (one 4-bit word, two 8-bit words).
  const paired = four || (eight && shape.pairs === true);
  const perThread = paired ? 8 : 4;
  const G = paired ? R / 2 : R;
  const unit = (r: number) => (paired ? r >> 1 : r);
  // Spread pairing: inside a span (a block, or a 2048-element row of a larger one) lane j owns
  // vec4s j and j + P/2 instead of 2j and 2j + 1, so each load and store of a warp covers whole
  // contiguous runs. A 4-bit word (two neighbouring vec4s) then has its halves on lanes j and
  // j ^ 1, exchanged by one subgroupShuffleXor, so 4-bit spreads only with subgroups.
  const span = Math.min(shape.blockSize, 2048);
  const P = span / 4; // vec4s per span
  const LS = span / 8; // lanes per span
  const BS = shape.blockSize;
  const BPT = blocksPerTile(shape);
  const trustRule = rule.direction !== undefined;
  if (pass === 'norm' && !trustRule) throw new Error('webgpu: norm pass for a rule without a trust ratio');
  const norm = pass === 'norm';
  const rw = norm ? 'read' : 'read_write';
  const cut = (c: string) => quant && !norm && PROFILE_CUTS.includes(c);
  const shuffle = quant && !norm && shape.shuffle === true && !cut('reduce');
  if (shuffle && !shape.subgroups) throw new Error('webgpu: the subgroup butterfly needs subgroups');
  const useSub = quant && !norm && shape.subgroups && !shuffle && !cut('reduce');
  const atomics = quant && !norm && !shuffle && !cut('reduce');
  const spread = paired && !norm && !cut('nospread') && (eight || useSub || shuffle);
  const ks = [...Array(S).keys()];
  const rs = [...Array(R).keys()];
  const gs = [...Array(G).keys()];

  const decls = [
    useSub || shuffle ? 'enable subgroups;' : '',
    uniformStruct(rule),
    `@group(0) @binding(1) var<storage, ${rw}> param: array<vec4<f32>>;`,
    `@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;`,
    quant
      ? `@group(0) @binding(3) var<storage, ${rw}> st: array<u32>;
@group(0) @binding(4) var<storage, ${rw}> absmax: array<f32>;`
      : `@group(0) @binding(3) var<storage, ${rw}> st: array<vec4<f32>>;`,
    eight ? `@group(0) @binding(5) var<storage, read> tables: array<f32>;` : '',
    trustRule ? `@group(0) @binding(6) var<storage, ${norm ? 'read_write' : 'read'}> normBuf: array<f32>;` : '',
    shape.clip ? `@group(0) @binding(7) var<storage, read> clipBuf: array<f32>;` : '',
    finiteWgsl,
    eight ? (shape.exact ? exactCodeWgsl({ signed: shape.states.includes('signed'), unsigned: shape.states.includes('unsigned') }) : nearestCodeWgsl) : four ? codes4Wgsl() : '',
    atomics ? `var<workgroup> red: array<atomic<u32>, ${3 * BPT * S}>;` : '',
    norm ? `var<workgroup> sums: array<vec2<f32>, ${WORKGROUP}>;` : '',
  ];

  const mapBase = (k: number) => (shape.states[k] === 'signed' ? 0 : 256);
  const zeroXor = (k: number) => ZERO_CODE[shape.states[k]] * 0x01010101;
  // Word of state k: of group g (4-bit), of vec4 r (8-bit); or the vec4 index (32-bit).
  const stIndex = (k: number, r: number) => {
    if (!quant) return `tile * ${S * 256}u + ${k}u * stride + sl`;
    const g = four ? r : unit(r);
    if (spread && eight) return `(blk${g} * ${S}u + ${k}u) * ${BS / 4}u + sb${g} / 4u + sj + ${(r & 1) * (P / 2)}u`;
    const word = four ? `word${g}` : paired ? `word${g} * 2u + ${r & 1}u` : `word${g}`;
    return `(blk${g} * ${S}u + ${k}u) * ${BS / (four ? 8 : 4)}u + ${word}`;
  };
  // 4-bit spread: word h (0, 1) of group g, holding this lane's vec4 2g + h and its neighbour's.
  const st4Index = (k: number, g: number, h: number) => `(blk${g} * ${S}u + ${k}u) * ${BS / 8}u + sb${g} / 8u + (sj >> 1u) + ${h * (P / 4)}u`;
  // The r-th vec4 of this thread in the tile: spread pairs (above), else neighbouring vec4s
  // (4-bit without subgroups) or one vec4 per 1024-element row (unpaired 8-bit).
  const vecIndex = (r: number) =>
    spread ? `tile * ${tile / 4}u + ${(r >> 1) * 512 + (r & 1) * (P / 2)}u + sp * ${P}u + sj` :
    paired ? `tile * ${tile / 4}u + ${(r >> 1) * 512 + (r & 1)}u + 2u * lid` : `tile * ${tile / 4}u + ${r * 256}u + lid`;

  // 4-bit: each word (8 codes) is loaded once for its two vec4s.
  const words4 = four
    ? gs
        .map((g) =>
          ks
            .map((k) => `    var w${k}_${g} = 0u; // a missing block reads as a zero-filled buffer: state 0
    var a${k}_${g} = 0.0;
    ${spread ? `var w${k}_${g}b = 0u;
    ` : ''}if (inBlk${g}) { ${spread ? `w${k}_${g} = st[${st4Index(k, g, 0)}]; w${k}_${g}b = st[${st4Index(k, g, 1)}];` : `w${k}_${g} = st[${stIndex(k, g)}];`} a${k}_${g} = absmax[blk${g} * ${S}u + ${k}u]; }`)
            .join('\n'),
        )
        .join('\n')
    : '';

  const perVec = rs
    .map((r) => {
      const decode = ks
        .map((k) => {
          if (four) {
            const fn = shape.states[k] === 'signed' ? 'decode4s' : 'decode4u';
            const word = spread ? `w${k}_${unit(r)}${r & 1 ? 'b' : ''} >> hs` : `w${k}_${unit(r)} >> ${16 * (r & 1)}u`;
            if (cut('decode')) return `    var s${k} = unpack4x8unorm(${word}) * a${k}_${unit(r)};`;
            return `    var s${k} = ${fn}(${word}, a${k}_${unit(r)});`;
          }
          return eight
            ? `    var w${k} = 0u; // a missing block reads as a zero-filled buffer: state 0
    var a${k} = 0.0;
    if (inBlk${unit(r)}) { w${k} = st[${stIndex(k, r)}]; a${k} = absmax[blk${unit(r)} * ${S}u + ${k}u]; }
    w${k} ^= ${zeroXor(k)}u;
    ${cut('decode') ? `var s${k} = unpack4x8unorm(w${k}) * a${k};` : `var s${k} = vec4<f32>(tMap[${mapBase(k)}u + (w${k} & 255u)], tMap[${mapBase(k)}u + ((w${k} >> 8u) & 255u)],
                          tMap[${mapBase(k)}u + ((w${k} >> 16u) & 255u)], tMap[${mapBase(k)}u + (w${k} >> 24u)]) * a${k};`}`
            : `    var s${k} = st[${stIndex(k, r)}];`;
        })
        .join('\n');
      const body = norm
        ? `${rule.direction}
    let pm = select(p, vec4<f32>(0.0), idx >= vec4<u32>(u.n));
    let dm = select(dir, vec4<f32>(0.0), bad);
    psq += dot(pm, pm);
    usq += dot(dm, dm);`
        : `${trustRule ? `${rule.direction}\n    ${rule.apply}` : cut('rule') ? `${ks.map((k) => `  s${k} = s${k} * 0.5 + g;`).join('\n')}\n  np = p - u.lr * s0;` : rule.element}
${ks.map((k) => `    s${k} = select(s${k}, vec4<f32>(0.0), bad);`).join('\n')}
    if (inb) {
      param[v4] = select(np, p, bad);
${quant ? '' : ks.map((k) => `      st[${stIndex(k, r)}] = s${k};`).join('\n')}
    }
${quant ? ks.map((k) => `    ns${k}_${r} = s${k};\n    mx${k}_${r} = absMax4(s${k});`).join('\n') : ''}`;
      return `  {
    let v4 = ${vecIndex(r)};
    let inb = v4 < nV4;
${quant ? '' : '    let sl = select(0u, lid, inb); // lanes past the tensor read its first lane (in bounds)\n'}    var p = vec4<f32>(0.0);
    var gr = vec4<f32>(0.0);
    if (inb) { p = param[v4]; gr = grad[v4]; }
    let idx = vec4<u32>(v4 * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    let gs = gr * gradScale;
    let bad = !finite4(gs) | (idx >= vec4<u32>(u.n));
    let g = select(gs, vec4<f32>(0.0), bad);
${decode}
    var np = p;
    var dir = vec4<f32>(0.0);
${body}
  }`;
    })
    .join('\n');

  // Block absmax of state k over group g: this thread's part, then the block's.
  const partMax = (k: number, g: number) => (paired ? `max(mx${k}_${2 * g}, mx${k}_${2 * g + 1})` : `mx${k}_${g}`);
  const kg = ks.flatMap((k) => gs.map((g) => [k, g] as const));
  const butterfly = (k: number, g: number) => {
    const masks = [];
    for (let m = 1; m < BS / perThread; m <<= 1) masks.push(`      m = max(m, subgroupShuffleXor(m, ${m}u));`);
    return `      var m = ${partMax(k, g)};\n${masks.join('\n')}`;
  };
  const reduce = atomics
    ? `
${kg
  .map(([k, g]) =>
    useSub
      ? `    { let m = subgroupMax(${partMax(k, g)}); if (sgid == 0u) { atomicMax(&red[rset + lb${g} * ${S}u + ${k}u], bitcast<u32>(m)); } }`
      : `    atomicMax(&red[rset + lb${g} * ${S}u + ${k}u], bitcast<u32>(${partMax(k, g)}));`,
  )
  .join('\n')}
    workgroupBarrier();
    if (lid < ${BPT * S}u) { atomicStore(&red[((iter + 1u) % 3u) * ${BPT * S}u + lid], 0u); }`
    : '';
  const blockMax = (k: number, g: number) =>
    cut('reduce')
      ? `      let am = min(${partMax(k, g)}, F32_MAX);`
      : shuffle
      ? `${butterfly(k, g)}
      let am = min(m, F32_MAX);`
      : `      let am = min(bitcast<f32>(atomicLoad(&red[rset + lb${g} * ${S}u + ${k}u])), F32_MAX);`;
  // Unsigned 8-bit states also pass the value before scaling: a positive one never encodes as 0.
  const enc8 = (k: number, r: number, x: string, c: string) =>
    shape.exact
      ? `encode${shape.states[k] === 'signed' ? 'Signed' : 'Unsigned'}X(${x}.${c}, ns${k}_${r}.${c})`
      : shape.states[k] === 'signed' ? `encodeSigned(${x}.${c})` : `encodeUnsigned(${x}.${c}, ns${k}_${r}.${c})`;
  const enc4 = (k: number, x: string, v: string) => (shape.states[k] === 'signed' ? `encode4s(${x}, ${v})` : `encode4u(${x})`);
  const word8 = (k: number, r: number, x: string) =>
    cut('encode') ? `pack4x8unorm(${x} * 0.5 + 0.5)` : ['x', 'y', 'z', 'w'].map((c, i) => (i === 0 ? enc8(k, r, x, c) : `(${enc8(k, r, x, c)} << ${8 * i}u)`)).join(' | ');
  const noStore = cut('stwrite') ? ' && u.lr == 1234.5' : ''; // never true in the bench: keeps the encode live
  const encodeUnit = (k: number, g: number) => {
    const rv = paired ? [2 * g, 2 * g + 1] : [g];
    const vs = rv.map((r) => `ns${k}_${r}`);
    const xs = vs.map((_, i) => `x${i}`);
    const stores = four && spread
      ? `      let c0 = ${cut('encode') ? 'pack4x8unorm(x0 * 0.5 + 0.5) & 0xffffu' : `pack8x4(${enc4(k, 'x0', vs[0])}, vec4<u32>(0u))`};
      let c1 = ${cut('encode') ? 'pack4x8unorm(x1 * 0.5 + 0.5) & 0xffffu' : `pack8x4(${enc4(k, 'x1', vs[1])}, vec4<u32>(0u))`};
      // Even lanes write word 0 (their low half, the odd neighbour's as high), odd lanes word 1.
      let recv = subgroupShuffleXor(select(c1, c0, odd), 1u);
      let wd = select(c0 | (recv << 16u), recv | (c1 << 16u), odd);
      if (inBlk${g}${noStore}) { st[select(${st4Index(k, g, 0)}, ${st4Index(k, g, 1)}, odd)] = wd; }`
      : four
      ? `      if (inBlk${g}${noStore}) { st[${stIndex(k, g)}] = ${cut('encode') ? 'pack4x8unorm(x0 * 0.5 + 0.5) ^ pack4x8unorm(x1 * 0.5 + 0.5)' : `pack8x4(${enc4(k, 'x0', vs[0])}, ${enc4(k, 'x1', vs[1])})`}; }`
      : rv.map((r, i) => `      if (inBlk${g}${noStore}) { st[${stIndex(k, r)}] = (${word8(k, r, xs[i])}) ^ ${zeroXor(k)}u; }`).join('\n');
    return `    {
      // A state that overflowed float32 saturates at the largest float32, as the CPU stores do,
      // so the block keeps a finite absmax (and its infinite elements encode as ±1).
${blockMax(k, g)}
      if (inBlk${g} && ${spread ? `first${g}` : `word${g} == 0u`}${noStore}) { absmax[blk${g} * ${S}u + ${k}u] = am; }
      // One reciprocal per block; an all-zero block (am 0) encodes 0. Past 2^120 the reciprocal
      // would be denormal (flushed to 0 on GPUs): that rare block scales both factors by 2^8.
${xs.map((x) => `      var ${x}: vec4<f32>;`).join('\n')}
      if (am > 0x1p120f) {
        let inv = 0x1p8f / am;
${xs.map((x, i) => `        ${x} = clamp((${vs[i]} * 0x1p-8f) * inv, vec4<f32>(-1.0), vec4<f32>(1.0));`).join('\n')}
      } else {
        let inv = select(1.0 / am, 0.0, am == 0.0);
${xs.map((x, i) => `        ${x} = ${vs[i]} * inv;`).join('\n')}
      }
${stores}
    }`;
  };
  const requantize = quant && !norm ? `${reduce}\n${kg.map(([k, g]) => encodeUnit(k, g)).join('\n')}` : '';

  const kr = ks.flatMap((k) => rs.map((r) => [k, r] as const));
  const regs = quant && !norm
    ? kr.map(([k, r]) => `    var mx${k}_${r} = 0.0;\n    var ns${k}_${r}: vec4<f32>;`).join('\n')
    : '';
  const builtins = [
    '@builtin(local_invocation_id) lid3: vec3<u32>',
    '@builtin(workgroup_id) wid3: vec3<u32>',
    '@builtin(num_workgroups) nwg3: vec3<u32>',
    useSub ? '@builtin(subgroup_invocation_id) sgid: u32' : '',
  ].filter(Boolean);
  const unitTile = paired ? 2048 : 1024; // elements of one group row across the workgroup

  const main = `
@compute @workgroup_size(${WORKGROUP})
fn main(${builtins.join(', ')}) {
  let lid = lid3.x;
  let wid = wid3.x;
  let nwg = nwg3.x;
${cut('notables') ? (eight ? '  _ = tables[0]; // keeps the binding in the layout' : '') : eight ? '  loadTables(lid);\n  workgroupBarrier();' : four ? '  loadTables4(lid);\n  workgroupBarrier();' : ''}
  let nV4 = (u.n + 3u) / 4u;
${quant ? `  let nBlk = (u.n + ${BS - 1}u) / ${BS}u;` : ''}
  let gradScale = ${shape.clip ? `clipBuf[${CLIP.scale}]` : 'u.gradScale'};
${trustRule && !norm ? '  var trust = 1.0;\n  if (u.useTrust != 0u) { trust = normBuf[0]; }' : ''}
${norm ? '  var psq = 0.0;\n  var usq = 0.0;' : ''}
  var iter = 0u;
  for (var tile = wid; tile < u.numTiles; tile += nwg) {
${atomics ? `    let rset = (iter % 3u) * ${BPT * S}u;` : ''}
    iter += 1u;
${spread ? `    let sj = lid % ${LS}u;
    let sp = lid / ${LS}u;
${four ? `    let hs = 16u * (sj & 1u);
    let odd = (sj & 1u) == 1u;
` : ''}${gs.map((g) => `    let sb${g} = (${g * unitTile}u + sp * ${span}u) % ${BS}u;
    let first${g} = sj == 0u && sb${g} == 0u;
`).join('')}` : ''}${quant ? gs.map((g) => `    let lb${g} = (${g * unitTile}u + ${perThread}u * lid) / ${BS}u;\n    let word${g} = ((${g * unitTile}u + ${perThread}u * lid) % ${BS}u) / ${perThread}u;\n    let blk${g} = tile * ${BPT}u + lb${g};\n    let inBlk${g} = blk${g} < nBlk;`).join('\n') : '    let stride = min(256u, nV4 - tile * 256u);'}
${regs}
${words4}
${perVec}
${requantize}
  }
${norm ? normTail : ''}
}`;
  return decls.filter(Boolean).join('\n') + '\n' + main;
}

const normTail = /* wgsl */ `
  sums[lid] = vec2<f32>(psq, usq);
  workgroupBarrier();
  for (var half = ${WORKGROUP / 2}u; half > 0u; half >>= 1u) {
    if (lid < half) { sums[lid] += sums[lid + half]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    normBuf[4u + 2u * (u.partialBase + wid)] = sums[0].x;
    normBuf[5u + 2u * (u.partialBase + wid)] = sums[0].y;
  }`;

/** Sums the norm pass's partials of one tensor and writes its trust ratio to normBuf[0]. */
export function finalizeKernel(rule: WgslRule): string {
  return `${uniformStruct(rule)}
@group(0) @binding(6) var<storage, read_write> normBuf: array<f32>;
var<workgroup> sums: array<vec2<f32>, ${WORKGROUP}>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  var acc = vec2<f32>(0.0);
  for (var i = lid; i < u.partialCount; i += ${WORKGROUP}u) {
    acc += vec2<f32>(normBuf[4u + 2u * i], normBuf[5u + 2u * i]);
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var half = ${WORKGROUP / 2}u; half > 0u; half >>= 1u) {
    if (lid < half) { sums[lid] += sums[lid + half]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let pn = sqrt(sums[0].x);
    let un = sqrt(sums[0].y);
    var t = 1.0;
    // Clamp the update norm to maxUnorm*||p||; a zero-norm tensor is updated unscaled.
    if (pn > 0.0 && un > u.maxUnorm * pn) { t = u.maxUnorm * pn / un; }
    normBuf[0] = t;
  }
}`;
}

const fixedStruct = `struct U {
  n: u32, numTiles: u32, partialBase: u32, partialCount: u32,
  useTrust: u32, gradScale: f32, lr: f32, maxUnorm: f32, percentile: f32,
}
@group(0) @binding(0) var<uniform> u: U;`;

/** Percentile clipping, pass 1: per-workgroup sums of g² over the finite gradient elements. */
export function gradNormKernel(tile: number): string {
  const rs = [...Array(tile / 1024).keys()];
  return `${fixedStruct}
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> clipBuf: array<f32>;
var<workgroup> sums: array<f32, ${WORKGROUP}>;
${finiteWgsl}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid3: vec3<u32>, @builtin(num_workgroups) nwg3: vec3<u32>) {
  let lid = lid3.x;
  let nV4 = (u.n + 3u) / 4u;
  var acc = 0.0;
  for (var tile = wid3.x; tile < u.numTiles; tile += nwg3.x) {
${rs.map((r) => `    {
      let v4 = tile * ${tile / 4}u + ${r * 256}u + lid;
      if (v4 < nV4) {
        let g = grad[v4];
        let idx = vec4<u32>(v4 * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
        let gm = select(vec4<f32>(0.0), g, finite4(g) & (idx < vec4<u32>(u.n)));
        acc += dot(gm, gm);
      }
    }`).join('\n')}
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var half = ${WORKGROUP / 2}u; half > 0u; half >>= 1u) {
    if (lid < half) { sums[lid] += sums[lid + half]; }
    workgroupBarrier();
  }
  if (lid == 0u) { clipBuf[${CLIP.partials}u + u.partialBase + wid3.x] = sums[0]; }
}`;
}

/**
 * Percentile clipping, pass 2 (one workgroup): the gradient norm, recorded in the tensor's
 * ring of the last 100 norms; the scale is (percentile-th smallest norm) / norm when the norm
 * exceeds it, else 1 (as NormHistory.record).
 */
export function clipKernel(): string {
  return `${fixedStruct}
@group(0) @binding(7) var<storage, read_write> clipBuf: array<f32>;
var<workgroup> sums: array<f32, ${WORKGROUP}>;
var<workgroup> sorted: array<f32, ${CLIP.size}>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  var acc = 0.0;
  for (var i = lid; i < u.partialCount; i += ${WORKGROUP}u) { acc += clipBuf[${CLIP.partials}u + i]; }
  sums[lid] = acc;
  workgroupBarrier();
  for (var half = ${WORKGROUP / 2}u; half > 0u; half >>= 1u) {
    if (lid < half) { sums[lid] += sums[lid + half]; }
    workgroupBarrier();
  }
  let norm = sqrt(sums[0]);
  let count = bitcast<u32>(clipBuf[${CLIP.count}u]);
  let n = min(count + 1u, ${CLIP.size}u);
  // The history with this step's norm in its slot, then each value's rank (ties by position).
  var v = 0.0;
  if (lid < n) { v = select(clipBuf[${CLIP.history}u + lid], norm, lid == count % ${CLIP.size}u); }
  workgroupBarrier();
  if (lid < n) {
    var rank = 0u;
    for (var j = 0u; j < n; j++) {
      let w = select(clipBuf[${CLIP.history}u + j], norm, j == count % ${CLIP.size}u);
      rank += u32(w < v || (w == v && j < lid));
    }
    sorted[rank] = v;
  }
  workgroupBarrier();
  if (lid == 0u) {
    clipBuf[${CLIP.history}u + count % ${CLIP.size}u] = norm;
    clipBuf[${CLIP.count}u] = bitcast<f32>(count + 1u);
    let clip = sorted[min(n - 1u, (u32(u.percentile) * n) / 100u)];
    clipBuf[${CLIP.scale}u] = select(1.0, clip / norm, norm > clip);
  }
}`;
}
