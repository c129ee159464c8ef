/**
 * bitopt CPU kernels, AssemblyScript → WebAssembly (128-bit SIMD, shared memory).
 *
 * The JS side (src/kernels/cpu/wasm-*.ts) owns the memory: it allocates every array, writes a
 * job descriptor (layout: scripts/codegen/layout.ts) and calls `run(desc, chunk)` on one or more
 * threads, each over a block-aligned chunk of the tensor. Nothing here allocates, so every
 * instance (one per thread) is stateless apart from a few globals.
 *
 * This file is the runtime: per block it decodes the states (the codec's part,
 * ./codecs/blockwise8.ts or ./codecs/blockwise4.ts, or float32 in place; codec ids 8, 4, 32), runs the rule's generated loop
 * (./generated/rules.ts, from src/optim/rules/*.ts) and re-encodes. In the float32 mode an
 * update runs whole blocks in runs of up to MAX_BLOCK elements per loop call (segments, one
 * absmax each), so the call's setup is paid per run, not per block. The exact mode is
 * bit-identical to the reference kernel (src/kernels/cpu/reference.ts); the float32 mode keeps
 * states bit-identical and computes the parameter in float32 (scripts/codegen/program.ts).
 */
import { D_ABSMAX, D_BITS, D_BLOCK, D_CHUNKS, D_DATA, D_FLOAT32, D_GRAD, D_N, D_NORMS, D_NSTATES, D_OP, D_PARAM, D_RULE, D_SCRATCH, D_TABLE, T4_MAP, T_MAP } from './generated/layout';
import { updateRun, updateRun32 } from './generated/rules';
import { am0, am1, am2, normU, normP, fc0, fc1, fc2, fap0, fap1, fap2, fmap0, fmap1, fmap2, fnib, fseg, famOut, AM_SEGMENTS, di } from './common';
import { absmaxOf, dequantizeBlock, quantizeBlock, quantizeBlockF } from './codecs/blockwise8';
import { buildPairs4, dequantizeBlock4, isLinear4, PAIRS4_BYTES, quantizeBlock4F } from './codecs/blockwise4';

// ---- scratch layout per thread --------------------------------------------------------------
const MAX_BLOCK: usize = 4096;
const S_STATES: usize = 0; // 3 × MAX_BLOCK float32
const S_TAIL: usize = 3 * MAX_BLOCK * 4; // p, g, s0, s1, s2: 4 float32 each
const S_PAIRS: usize = S_TAIL + 5 * 16; // 3 × the 4-bit fused decode's pair table (PAIRS4_BYTES)
const S_AM: usize = S_PAIRS + 3 * PAIRS4_BYTES; // 3 × AM_SEGMENTS new block absmax (famOut)
export const SCRATCH_BYTES: i32 = <i32>(S_AM + 3 * AM_SEGMENTS * 4);

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
 * Float32 view of state k for block b: the dequantized block in scratch (8- and 4-bit) or the
 * state's own values (32-bit); states the rule does not have point at zeroed tail scratch.
 */
@inline function stateBlock(desc: usize, k: i32, nstates: i32, bits: i32, b: i32, start: i32, len: i32, scratch: usize): usize {
  if (k >= nstates) return scratch + S_TAIL + 32 + 16 * <usize>k;
  const data = <usize>di(desc, D_DATA + k);
  if (bits == 32) return data + (<usize>start << 2);
  const sp = scratch + S_STATES + <usize>k * MAX_BLOCK * 4;
  const absmax = load<f32>(<usize>di(desc, D_ABSMAX + k) + (<usize>b << 2));
  const tab = <usize>di(desc, D_TABLE + k);
  if (bits == 4) dequantizeBlock4(data + (<usize>start >> 1), len, absmax, tab, sp);
  else dequantizeBlock(data + <usize>start, len, absmax, tab + T_MAP, sp);
  return sp;
}

/**
 * Fused-decode setup of state k from block b on (float32 mode, 8- and 4-bit; len elements, one
 * block or a run of whole blocks): the update reads the old values from the codes (fcK), only
 * the last len % 4 are decoded into scratch for the tail; returns the scratch where the new
 * values go.
 */
function fusedState(desc: usize, k: i32, nstates: i32, bits: i32, b: i32, start: i32, len: i32, scratch: usize): usize {
  if (k >= nstates) return scratch + S_TAIL + 32 + 16 * <usize>k;
  const nib = bits == 4;
  // A 4-bit block starts at an even element: its codes start at a byte.
  const codes = <usize>di(desc, D_DATA + k) + (nib ? <usize>start >> 1 : <usize>start);
  const absmaxAt = <usize>di(desc, D_ABSMAX + k) + (<usize>b << 2); // block b's, then b + 1's ... (segments)
  const absmax = load<f32>(absmaxAt);
  const map = <usize>di(desc, D_TABLE + k) + (nib ? T4_MAP : T_MAP);
  const sp = scratch + S_STATES + <usize>k * MAX_BLOCK * 4;
  // The loop decodes 4-bit codes a byte at a time through the pair table run() built.
  const loopMap = nib ? scratch + S_PAIRS + <usize>k * PAIRS4_BYTES : map;
  for (let j = len & ~3; j < len; j++) {
    let code: usize;
    if (nib) {
      const byte = <usize>load<u8>(codes + (<usize>j >> 1));
      code = j & 1 ? byte >> 4 : byte & 15;
    } else code = <usize>load<u8>(codes + <usize>j);
    store<f32>(sp + (<usize>j << 2), load<f32>(map + (code << 2)) * absmax);
  }
  if (k == 0) {
    fc0 = codes;
    fap0 = absmaxAt;
    fmap0 = loopMap;
  } else if (k == 1) {
    fc1 = codes;
    fap1 = absmaxAt;
    fmap1 = loopMap;
  } else {
    fc2 = codes;
    fap2 = absmaxAt;
    fmap2 = loopMap;
  }
  return sp;
}

// Bit k set: 4-bit state k is on the zero-free linear map (isLinear4), set by run().
let linear4Mask: i32 = 0;

/** Re-encodes state k of block b from scratch with the block's new absmax. */
@inline function encodeState(desc: usize, k: i32, bits: i32, b: i32, start: i32, len: i32, sp: usize, absmaxIn: f32): void {
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
  // A 4-bit block starts at an even element (blocks are powers of two >= 64): its own bytes.
  if (bits == 4) quantizeBlock4F(sp, len, <usize>di(desc, D_DATA + k) + (<usize>start >> 1), <usize>di(desc, D_TABLE + k), absmax, ((linear4Mask >> k) & 1) != 0);
  else quantizeBlockF(sp, len, <usize>di(desc, D_DATA + k) + <usize>start, <usize>di(desc, D_TABLE + k), absmax);
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
  const bits = di(desc, D_BITS);
  const eight = bits == 8;
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
  // Fused decode reads the codes in the loops (float32 mode); the exact mode decodes into scratch first.
  const fused = (eight || bits == 4) && di(desc, D_FLOAT32) != 0;
  fnib = bits == 4;
  linear4Mask = 0;
  if (fnib) {
    for (let k = 0; k < nstates; k++) {
      const tab = <usize>di(desc, D_TABLE + k);
      if (fused) buildPairs4(tab + T4_MAP, scratch + S_PAIRS + <usize>k * PAIRS4_BYTES);
      if (isLinear4(tab)) linear4Mask |= 1 << k;
    }
  }
  fc0 = 0;
  fc1 = 0;
  fc2 = 0;
  fseg = 0;
  famOut = scratch + S_AM;
  fap0 = famOut; // read by the loops only for fused states, set by fusedState
  fap1 = famOut;
  fap2 = famOut;
  // Whole blocks of an update run as one segmented call of up to MAX_BLOCK elements (the
  // scratch's size); the norm pass keeps one call per block, so its per-block sums stay as
  // they are whatever the chunking. The last block, if partial, goes alone.
  const whole = n % bs == 0 ? blocks : blocks - 1;
  const perRun = max(1, <i32>MAX_BLOCK / bs);
  for (let b = b0; b < b1; ) {
    if (fused && op == 1 && b < whole) {
      const runBlocks = min(perRun, min(b1, whole) - b);
      const start = b * bs;
      const len = runBlocks * bs;
      const r0 = fusedState(desc, 0, nstates, bits, b, start, len, scratch);
      const r1 = fusedState(desc, 1, nstates, bits, b, start, len, scratch);
      const r2 = fusedState(desc, 2, nstates, bits, b, start, len, scratch);
      fseg = bs;
      updateRun32(desc, rule, op, len, param + (<usize>start << 2), grad + (<usize>start << 2), r0, r1, r2);
      fseg = 0;
      for (let j = 0; j < runBlocks; j++) {
        const at = <usize>(j * bs) << 2;
        const am = famOut + (<usize>j << 2);
        if (nstates > 0) encodeState(desc, 0, bits, b + j, start + j * bs, bs, r0 + at, load<f32>(am));
        if (nstates > 1) encodeState(desc, 1, bits, b + j, start + j * bs, bs, r1 + at, load<f32>(am, AM_SEGMENTS * 4));
        if (nstates > 2) encodeState(desc, 2, bits, b + j, start + j * bs, bs, r2 + at, load<f32>(am, AM_SEGMENTS * 8));
      }
      b += runBlocks;
      continue;
    }
    const blk = b++;
    const start = blk * bs;
    const len = min(bs, n - start);
    const off = <usize>start << 2;
    let s0: usize, s1: usize, s2: usize;
    if (fused) {
      s0 = fusedState(desc, 0, nstates, bits, blk, start, len, scratch);
      s1 = fusedState(desc, 1, nstates, bits, blk, start, len, scratch);
      s2 = fusedState(desc, 2, nstates, bits, blk, start, len, scratch);
    } else {
      s0 = stateBlock(desc, 0, nstates, bits, blk, start, len, scratch);
      s1 = stateBlock(desc, 1, nstates, bits, blk, start, len, scratch);
      s2 = stateBlock(desc, 2, nstates, bits, blk, start, len, scratch);
    }
    updateAny(desc, rule, op, len, param + off, grad + off, s0, s1, s2, tail, nstates);
    if (op == 2) {
      store<f64>(norms + (<usize>blk << 4), normU);
      store<f64>(norms + (<usize>blk << 4) + 8, normP);
      continue;
    }
    if (bits == 32) continue;
    const a0 = am0;
    const a1 = am1;
    const a2 = am2;
    if (nstates > 0) encodeState(desc, 0, bits, blk, start, len, s0, a0);
    if (nstates > 1) encodeState(desc, 1, bits, blk, start, len, s1, a1);
    if (nstates > 2) encodeState(desc, 2, bits, blk, start, len, s2, a2);
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
