/**
 * A state codec is the one place a state format lives: how a state tensor is stored between
 * steps (bytes per element, block rules), how a block is decoded to float32 and encoded back
 * (the reference, in TypeScript), its checkpoint fields and their validation. Update rules only
 * ever see float32 blocks, so a new format is a new codec, not an edit of any rule.
 *
 * Backends take a codec's parts by its `format`: the WebAssembly kernel (src/kernels/cpu) and
 * the WebGPU engine (src/kernels/webgpu) each keep a table of the formats they run; a format
 * missing there falls back to the reference loop with a warning (wasm) or is refused with an
 * error naming the format (WebGPU). docs/architecture.md §4 has the recipe for a new format.
 */
import type { StateSign } from '../optim/rule.js';

/** A state's storage format: float32 (4 B/element), blockwise8 (1 B/element + one float32 absmax per block), blockwise4 (0.5 B/element + one float32 absmax per block). */
export type StateFormat = 'float32' | 'blockwise8' | 'blockwise4';

/** One state tensor in some format. */
export interface StateStore {
  /** The storage format (selects the codec). */
  readonly format: StateFormat;
  /** 'signed' (momentum-like) or 'unsigned' (second moments, never negative): picks the quantization map. */
  readonly sign: StateSign;
  /** Elements of the state (the parameter's length). */
  readonly length: number;
  /** Decode elements [start, start+n) into out[0..n). */
  load(start: number, n: number, out: Float32Array): void;
  /** Encode src[0..n) into elements [start, start+n); block formats take whole blocks. src may be clamped in place. */
  store(start: number, n: number, src: Float32Array): void;
  /** Bytes this state occupies. */
  readonly bytes: number;
}

/** What every state's checkpoint entry has; each codec adds its own fields (plain data and typed arrays). */
export interface BaseStateEntry {
  /** The state's storage format (selects the codec that reads the entry). */
  format: StateFormat;
  /** The state's sign ('signed' or 'unsigned'). */
  sign: StateSign;
}

/** A state format: sizes, block rule, creation and checkpoint entries of its states (src/codecs). */
export interface StateCodec<S extends StateStore = StateStore, E extends BaseStateEntry = BaseStateEntry> {
  /** The format this codec stores. */
  readonly format: StateFormat;
  /** Storage bits per element (the `optimBits` that selects it). */
  readonly bits: number;
  /** Whether the state is stored in blocks that share a scale (then a kernel runs whole blocks). */
  readonly blockwise: boolean;
  /**
   * The block size a state of this format gets when the options give no `blockSize`
   * (blockwise8 256, blockwise4 128; float32 is not block-wise: its number is only the
   * kernels' chunk length).
   */
  readonly defaultBlockSize: number;
  /** Bytes a state of `length` elements takes at `blockSize`. */
  bytes(length: number, blockSize: number): number;
  /** A zero state. */
  create(sign: StateSign, length: number, blockSize: number): S;
  /** Is `s` one of this codec's states? */
  owns(s: StateStore): s is S;
  /** The block size of a state (blockwise formats), or null. */
  blockSizeOf(s: S): number | null;
  /** Checkpoint entry of a state (copies, so later steps do not change it). */
  toEntry(s: S): E;
  /**
   * Validates a checkpoint entry for a state of `sign` over `length` elements and returns a
   * fresh state; throws `Error('<where>: <problem>')` on anything malformed.
   */
  fromEntry(entry: Record<string, unknown>, sign: StateSign, length: number, where: string): S;
}

/** Thrown by codecs for a bad checkpoint entry; the message is `<where>: <what>`. */
export function entryError(where: string, what: string): never {
  throw new Error(`loadStateDict: ${where}: ${what}`);
}

/** `v` as a typed array of `type` and `length`, else an entry error. */
export function expectArray<T>(v: unknown, type: { new (n: number): T; name: string }, length: number, where: string): T {
  if (!(v instanceof (type as unknown as new () => object))) entryError(where, `expected a ${type.name}, got ${(v as object)?.constructor?.name ?? typeof v}`);
  const len = (v as unknown as { length: number }).length;
  if (len !== length) entryError(where, `expected ${length} values, got ${len}`);
  return v as T;
}

/** Every value finite and >= min (+Infinity allowed when asked). */
export function checkFinite(a: Float32Array | Float64Array, where: string, min = -Infinity, allowPlusInfinity = false): void {
  for (let i = 0; i < a.length; i++) {
    if ((!Number.isFinite(a[i]) && !(allowPlusInfinity && a[i] === Infinity)) || a[i] < min) entryError(where, `value ${i} is ${a[i]}`);
  }
}

/** Largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * The block store rule of every block-wise codec: `quantize` encodes src[0..n) and returns the
 * block's absmax. A state that overflowed float32 (e.g. v = g² with |g| > 5.8e20 in Adam) is
 * saturated at the largest float32 (in src) and encoded again, so the block keeps a finite absmax
 * instead of decoding to NaN forever.
 */
export function quantizeSaturating(src: Float32Array, n: number, quantize: () => number): number {
  const absmax = quantize();
  if (absmax !== Infinity) return absmax;
  for (let i = 0; i < n; i++) src[i] = Math.max(-FLOAT32_MAX, Math.min(FLOAT32_MAX, src[i]));
  return quantize();
}
