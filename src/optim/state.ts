/**
 * State formats as the optimizer sees them: every format is a codec (src/codecs), and this
 * module is the optimizer's door to them. Rules only ever see float32 blocks.
 */
import { codecByFormat, type StateFormat, type StateStore } from '../codecs/index.js';
import type { StateSign } from './rule.js';

export { Blockwise8State, Float32State, stateMap, stateNudge, type StateFormat, type StateStore } from '../codecs/index.js';

/** A zero-initialised state of `length` elements in `format`. */
export function createState(format: StateFormat, sign: StateSign, length: number, blockSize: number): StateStore {
  const codec = codecByFormat(format);
  if (!codec) throw new Error(`unknown state format '${String(format)}'`);
  return codec.create(sign, length, blockSize);
}
