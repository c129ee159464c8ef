/** The state codecs by format, and by the `optimBits` that selects each. */
import { blockwise4Codec, type Blockwise4Entry } from './blockwise4.js';
import { blockwise8Codec, type Blockwise8Entry } from './blockwise8.js';
import type { StateCodec, StateFormat, StateStore } from './codec.js';
import { float32Codec, type Float32Entry } from './float32.js';

/** A state's checkpoint entry, by format. */
export type StateEntry = Float32Entry | Blockwise8Entry | Blockwise4Entry;

export const CODECS: Readonly<Record<StateFormat, StateCodec>> = Object.freeze({
  float32: float32Codec as StateCodec,
  blockwise8: blockwise8Codec as StateCodec,
  blockwise4: blockwise4Codec as StateCodec,
});

/** The codec `optimBits` selects (32 → float32, 8 → blockwise8, 4 → blockwise4). */
export function codecForBits(bits: number): StateCodec {
  const c = Object.values(CODECS).find((k) => k.bits === bits);
  if (!c) throw new Error(`no state codec stores ${bits} bits (have ${Object.values(CODECS).map((k) => k.bits).join(', ')})`);
  return c;
}

/** The codec of a format name (own names only: 'constructor' is not a format), or undefined. */
export function codecByFormat(format: unknown): StateCodec | undefined {
  return typeof format === 'string' && Object.hasOwn(CODECS, format) ? CODECS[format as StateFormat] : undefined;
}

/** The codec of a state (by its format), or an error naming the format. */
export function codecOf(s: StateStore): StateCodec {
  const c = codecByFormat(s.format);
  if (!c || !c.owns(s)) throw new Error(`state format '${String(s.format)}' has no codec`);
  return c;
}

export * from './codec.js';
export {
  BLOCKWISE4_DEFAULT_BLOCK_SIZE,
  Blockwise4State,
  blockwise4Codec,
  codeAt,
  createZeroFreeLinearMap4,
  dequantizeBlock4,
  quantizeBlock4,
  stateMap4,
  stateNudge4,
  type Blockwise4Entry,
} from './blockwise4.js';
export { Blockwise8State, blockwise8Codec, stateMap, stateNudge, type Blockwise8Entry } from './blockwise8.js';
export { Float32State, float32Codec, type Float32Entry } from './float32.js';
