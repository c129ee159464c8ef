/** The float32 codec: a state is a plain Float32Array (4 bytes per element). */
import type { StateSign } from '../optim/rule.js';
import { checkFinite, expectArray, type StateCodec, type StateStore } from './codec.js';

/** The checkpoint entry of a float32 state. */
export interface Float32Entry {
  /** Always 'float32'. */
  format: 'float32';
  /** The state's sign ('signed' or 'unsigned'). */
  sign: StateSign;
  /** The state's values, one per element (a copy). */
  values: Float32Array;
}

/** A float32 state: a plain Float32Array (4 bytes per element). */
export class Float32State implements StateStore {
  readonly format = 'float32';
  constructor(
    readonly sign: StateSign,
    /** The state's values, one per element. */
    readonly values: Float32Array,
  ) {}
  get length(): number {
    return this.values.length;
  }
  get bytes(): number {
    return this.values.byteLength;
  }
  load(start: number, n: number, out: Float32Array): void {
    out.set(this.values.subarray(start, start + n));
  }
  store(start: number, n: number, src: Float32Array): void {
    this.values.set(src.subarray(0, n), start);
  }
}

/** The float32 codec (`optimBits: 32`). */
export const float32Codec: StateCodec<Float32State, Float32Entry> = {
  format: 'float32',
  bits: 32,
  blockwise: false,
  defaultBlockSize: 256,
  bytes: (length) => 4 * length,
  create: (sign, length) => new Float32State(sign, new Float32Array(length)),
  owns: (s): s is Float32State => s instanceof Float32State,
  blockSizeOf: () => null,
  toEntry: (s) => ({ format: 'float32', sign: s.sign, values: s.values.slice() }),
  fromEntry(e, sign, length, where) {
    const values = expectArray(e.values, Float32Array, length, `${where}.values`);
    // A float32 second-moment state (unsigned) overflows to +Infinity when g² exceeds float32 on
    // every backend (the element's update is then 0, never NaN); such a checkpoint must load.
    // A negative one never arises and would turn into NaN through sqrt().
    const unsigned = sign === 'unsigned';
    checkFinite(values, `${where}.values`, unsigned ? 0 : -Infinity, unsigned);
    return new Float32State(sign, values.slice());
  },
};
