/**
 * Where a tensor's data lives on the GPU: tiles, the per-tile interleaved state layout, and
 * the split into chunks whose buffer ranges each fit one storage binding
 * (maxStorageBufferBindingSize) and start at offsets aligned to minStorageBufferOffsetAlignment.
 *
 * State buffers cost the tensor's logical size, not whole tiles (small tensors are common:
 * biases, norms, every tensor under min8bitSize keeps float32 state):
 * - float32 states: every tile but the last holds S runs of `tile` floats; the last tile holds
 *   S runs of its own element count rounded up to a vec4. Total S·ceil(n/4)·16 bytes.
 * - 8-bit: codes and absmax are interleaved per block, and only the tensor's ceil(n/blockSize)
 *   blocks exist: S·blocks·blockSize bytes of codes (< blockSize codes of slack per state)
 *   plus S·blocks·4 bytes of absmax.
 * - 4-bit: the same with two codes per byte: S·blocks·blockSize/2 bytes of codes, each block's
 *   bytes exactly the CPU's packed bytes (`pack4`), plus S·blocks·4 bytes of absmax.
 * Chunks start at tile boundaries, where both layouts coincide with whole tiles, so a chunk's
 * range is its tiles' range clipped to the buffer's end.
 */
import { blocksPerTile, tileSize, type KernelShape } from './template.js';
import { gpuTensorBytes } from './device.js';
import { ZERO_CODE } from './tables.js';
import type { StateSign } from '../../optim/rule.js';

export interface Chunk {
  /** First tile of the chunk and its number of tiles. */
  tile0: number;
  tiles: number;
  /** Elements of the tensor inside the chunk. */
  n: number;
  /** Workgroups dispatched for the chunk (each walks tiles with a stride). */
  workgroups: number;
  /** Index of the chunk's first workgroup among the tensor's norm partials. */
  partialBase: number;
}

export interface TensorLayout {
  shape: KernelShape;
  length: number;
  tile: number;
  tiles: number;
  /** Bytes per (whole) tile of each buffer. */
  paramTileBytes: number;
  stateTileBytes: number;
  absmaxTileBytes: number;
  /** Bytes of the state buffer (codes or float32 states) and of the absmax buffer (8-bit, else 0). */
  stateBytes: number;
  absmaxBytes: number;
  chunks: Chunk[];
  partials: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

export function planLayout(
  shape: KernelShape,
  length: number,
  maxBindingBytes: number,
  offsetAlignment: number,
  maxWorkgroups: number,
): TensorLayout {
  const S = shape.states.length;
  const tile = tileSize(shape);
  const tiles = Math.max(1, Math.ceil(length / tile));
  const paramTileBytes = tile * 4;
  const quant = shape.bits !== 32;
  const stateTileBytes = (S * tile * shape.bits) / 8;
  const absmaxTileBytes = quant ? S * blocksPerTile(shape) * 4 : 0;
  const perTile = [paramTileBytes, stateTileBytes, absmaxTileBytes].filter((b) => b > 0);
  // Chunks start at multiples of `step` tiles so every buffer's offset is aligned.
  const step = perTile.reduce((q, b) => lcm(q, offsetAlignment / gcd(offsetAlignment, b)), 1);
  const fit = Math.floor(maxBindingBytes / Math.max(...perTile) / step) * step;
  if (fit < 1) {
    throw new Error(`webgpu: a storage binding of ${maxBindingBytes} bytes cannot hold ${step} tile(s) of ${Math.max(...perTile)} bytes`);
  }
  const chunks: Chunk[] = [];
  let partials = 0;
  for (let t0 = 0; t0 < tiles; t0 += fit) {
    const t = Math.min(fit, tiles - t0);
    const workgroups = Math.min(t, maxWorkgroups, 65535);
    chunks.push({ tile0: t0, tiles: t, n: Math.min(length, (t0 + t) * tile) - t0 * tile, workgroups, partialBase: partials });
    partials += workgroups;
  }
  const blocks = quant ? Math.max(1, Math.ceil(length / shape.blockSize)) : 0;
  const stateBytes = quant ? (S * blocks * shape.blockSize * shape.bits) / 8 : S * gpuTensorBytes(length);
  const absmaxBytes = S * blocks * 4;
  return { shape, length, tile, tiles, paramTileBytes, stateTileBytes, absmaxTileBytes, stateBytes, absmaxBytes, chunks, partials };
}

/** Float32 states: elements per state in tile `t` (a whole tile, or the last tile's vec4s). */
export function stateStride32(l: TensorLayout, t: number): number {
  return t < l.tiles - 1 ? l.tile : Math.max(4, Math.ceil((l.length - t * l.tile) / 4) * 4);
}

/** Float32 states: index of state k's first element of tile t (matches the kernel's stIndex). */
export function stateOffset32(l: TensorLayout, S: number, t: number, k: number): number {
  return t * S * l.tile + k * stateStride32(l, t);
}

/** Byte range of a chunk in a buffer with `tileBytes` per tile, clipped to `total` bytes. */
export function chunkRange(c: Chunk, tileBytes: number, total: number): { offset: number; size: number } {
  const offset = c.tile0 * tileBytes;
  return { offset, size: Math.min(c.tiles * tileBytes, total - offset) };
}

export function paramBytes(l: TensorLayout): number {
  return gpuTensorBytes(l.length);
}

/** Interleaves per-state 8-bit codes (XOR the zero code) and absmax into the GPU layout. */
export function pack8(l: TensorLayout, codes: Uint8Array[], absmax: Float32Array[]): { st: Uint8Array; am: Float32Array } {
  const { blockSize: bs, states } = l.shape;
  const S = states.length;
  const blocks = l.absmaxBytes / 4 / S;
  const st = new Uint8Array(l.stateBytes);
  const am = new Float32Array(blocks * S);
  const nb = Math.ceil(l.length / bs);
  for (let k = 0; k < S; k++) {
    const z = ZERO_CODE[states[k]];
    for (let b = 0; b < blocks; b++) {
      const dst = (b * S + k) * bs;
      if (b >= nb) continue; // padding blocks stay zero-filled: state 0
      const n = Math.min(bs, l.length - b * bs);
      for (let i = 0; i < n; i++) st[dst + i] = codes[k][b * bs + i] ^ z;
      am[b * S + k] = absmax[k][b];
    }
  }
  return { st, am };
}

/** Inverse of pack8 for the tensor's real elements and blocks. */
export function unpack8(l: TensorLayout, st: Uint8Array, am: Float32Array): { codes: Uint8Array[]; absmax: Float32Array[] } {
  const { blockSize: bs, states } = l.shape;
  const S = states.length;
  const nb = Math.ceil(l.length / bs);
  const codes = states.map(() => new Uint8Array(l.length));
  const absmax = states.map(() => new Float32Array(nb));
  for (let k = 0; k < S; k++) {
    const z = ZERO_CODE[states[k] as StateSign];
    for (let b = 0; b < nb; b++) {
      const src = (b * S + k) * bs;
      const n = Math.min(bs, l.length - b * bs);
      for (let i = 0; i < n; i++) codes[k][b * bs + i] = st[src + i] ^ z;
      absmax[k][b] = am[b * S + k];
    }
  }
  return { codes, absmax };
}

/** Interleaves per-state packed 4-bit codes (the CPU's bytes, two codes each) and absmax into the GPU layout. */
export function pack4(l: TensorLayout, codes: Uint8Array[], absmax: Float32Array[]): { st: Uint8Array; am: Float32Array } {
  const bs = l.shape.blockSize;
  const S = l.shape.states.length;
  const st = new Uint8Array(l.stateBytes);
  const am = new Float32Array(l.absmaxBytes / 4);
  const nb = Math.ceil(l.length / bs);
  for (let k = 0; k < S; k++) {
    for (let b = 0; b < nb; b++) {
      const src = (b * bs) / 2; // blockSize is even: a block starts on a byte
      st.set(codes[k].subarray(src, Math.min(codes[k].length, src + bs / 2)), ((b * S + k) * bs) / 2);
      am[b * S + k] = absmax[k][b];
    }
  }
  return { st, am };
}

/**
 * Inverse of pack4. The kernel encodes the lanes past an odd-length tensor's end too; the
 * unused high nibble of its last byte is cleared, as the CPU format requires.
 */
export function unpack4(l: TensorLayout, st: Uint8Array, am: Float32Array): { codes: Uint8Array[]; absmax: Float32Array[] } {
  const bs = l.shape.blockSize;
  const S = l.shape.states.length;
  const nb = Math.ceil(l.length / bs);
  const bytes = Math.ceil(l.length / 2);
  const codes = l.shape.states.map(() => new Uint8Array(bytes));
  const absmax = l.shape.states.map(() => new Float32Array(nb));
  for (let k = 0; k < S; k++) {
    for (let b = 0; b < nb; b++) {
      const dst = (b * bs) / 2;
      const src = ((b * S + k) * bs) / 2;
      codes[k].set(st.subarray(src, src + Math.min(bs / 2, bytes - dst)), dst);
      absmax[k][b] = am[b * S + k];
    }
    if (l.length & 1) codes[k][bytes - 1] &= 15;
  }
  return { codes, absmax };
}

/** Interleaves float32 states per tile. */
export function pack32(l: TensorLayout, values: Float32Array[]): Float32Array {
  const S = values.length;
  const out = new Float32Array(l.stateBytes / 4);
  for (let k = 0; k < S; k++) {
    for (let t = 0; t < l.tiles; t++) {
      const start = t * l.tile;
      if (start >= l.length) break;
      out.set(values[k].subarray(start, Math.min(l.length, start + l.tile)), stateOffset32(l, S, t, k));
    }
  }
  return out;
}

export function unpack32(l: TensorLayout, S: number, data: Float32Array): Float32Array[] {
  const out = [...Array(S)].map(() => new Float32Array(l.length));
  for (let k = 0; k < S; k++) {
    for (let t = 0; t < l.tiles; t++) {
      const start = t * l.tile;
      if (start >= l.length) break;
      const n = Math.min(l.tile, l.length - start);
      const o = stateOffset32(l, S, t, k);
      out[k].set(data.subarray(o, o + n), start);
    }
  }
  return out;
}
