/**
 * The WebAssembly kernel's part of each state codec (src/codecs): the id the AssemblyScript
 * runtime dispatches on (descriptor slot `bits`), how a state moves into kernel memory, and how
 * its arrays are named in the descriptor. A format missing here runs on the reference loop,
 * with a one-time warning (see wasm-kernel.ts).
 */
import { Blockwise4State, Blockwise8State, Float32State, type StateFormat, type StateStore } from '../../codecs/index.js';
import type { TableCache } from './wasm-tables.js';
import type { WasmRuntime } from './wasm-runtime.js';

export interface WasmCodecPart {
  /** The runtime's codec id (assembly/kernels.ts: 32 float32, 8 block-wise 8-bit, 4 block-wise 4-bit). */
  readonly id: number;
  /** A copy of `s` over arrays in kernel memory (freed with it), or null when it is already there. */
  adopt(s: StateStore, rt: WasmRuntime): StateStore | null;
  /** Copies the values of `from` (placed by `adopt`) into `to`, a store of the same format and shape. */
  copyInto(from: StateStore, to: StateStore): void;
  /** The descriptor fields of state k: data pointer, absmax pointer, table pointer (0 when unused); null if the kernel cannot run it. */
  bind(s: StateStore, tables: TableCache): { data: number; absmax: number; table: number } | null;
}

const float32Part: WasmCodecPart = {
  id: 32,
  adopt(s, rt) {
    const f = s as Float32State;
    if (rt.owns(f.values)) return null;
    const vp = rt.alloc(f.values.length * 4);
    const values = rt.f32(vp, f.values.length);
    values.set(f.values);
    const moved = new Float32State(f.sign, values);
    rt.releaseWith(moved, [vp]);
    return moved;
  },
  copyInto: (from, to) => (to as Float32State).values.set((from as Float32State).values),
  bind: (s) => ({ data: (s as Float32State).values.byteOffset, absmax: 0, table: 0 }),
};

/** A block-wise state's arrays: one code array and one float32 absmax per block. */
type BlockState = StateStore & { readonly codes: Uint8Array; readonly absmax: Float32Array };

/** `adopt` of the block formats: `b`'s codes and absmax copied into kernel memory, re-wrapped by `wrap`. */
function adoptBlocks<S extends BlockState>(b: S, rt: WasmRuntime, wrap: (codes: Uint8Array, absmax: Float32Array) => S): S | null {
  if (rt.owns(b.codes) && rt.owns(b.absmax)) return null;
  const cp = rt.alloc(b.codes.length);
  const ap = rt.alloc(b.absmax.length * 4);
  const codes = rt.u8(cp, b.codes.length);
  const absmax = rt.f32(ap, b.absmax.length);
  codes.set(b.codes);
  absmax.set(b.absmax);
  const moved = wrap(codes, absmax);
  rt.releaseWith(moved, [cp, ap]);
  return moved;
}

/** `copyInto` of the block formats. */
function copyBlocks(from: StateStore, to: StateStore): void {
  (to as BlockState).codes.set((from as BlockState).codes);
  (to as BlockState).absmax.set((from as BlockState).absmax);
}

const blockwise8Part: WasmCodecPart = {
  id: 8,
  adopt(s, rt) {
    const b = s as Blockwise8State;
    return adoptBlocks(b, rt, (codes, absmax) => new Blockwise8State(b.sign, b.blockSize, b.map, codes, absmax));
  },
  copyInto: copyBlocks,
  bind(s, tables) {
    const b = s as Blockwise8State;
    const table = tables.get(b.map, b.nudge);
    return table === null ? null : { data: b.codes.byteOffset, absmax: b.absmax.byteOffset, table };
  },
};

const blockwise4Part: WasmCodecPart = {
  id: 4,
  adopt(s, rt) {
    const b = s as Blockwise4State;
    return adoptBlocks(b, rt, (codes, absmax) => new Blockwise4State(b.sign, b.blockSize, b.map, codes, absmax, b.length));
  },
  copyInto: copyBlocks,
  bind(s, tables) {
    const b = s as Blockwise4State;
    return { data: b.codes.byteOffset, absmax: b.absmax.byteOffset, table: tables.get4(b.map, b.sign) };
  },
};

export const WASM_CODECS: Partial<Readonly<Record<StateFormat, WasmCodecPart>>> = { float32: float32Part, blockwise8: blockwise8Part, blockwise4: blockwise4Part };
