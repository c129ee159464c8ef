/**
 * Optimizer state as tfjs weights (`getWeights`/`setWeights`, and so `model.save` with
 * `includeOptimizer`). One variable's state is a bitopt state dict (the core checkpoint format)
 * written as tensors that hold its bytes exactly:
 *
 *   `<variable>/bitopt/header`  int32: [byte length, UTF-8 JSON packed 4 bytes per int32]
 *   `<variable>/bitopt/<k>`     the typed arrays of the state dict, in the header's order:
 *       Float32Array (absmax, float32 states, maps)  → float32 tensor, same values
 *       Uint8Array   (8-bit codes)                   → int32 tensor, 4 codes per int32
 *                                                      (little-endian bytes, zero-padded)
 *       Float64Array (clipping norm history)         → int32 tensor, 2 int32 per float64 (bits)
 *
 * The header carries the variable's name and shape, the optimizer class and the state dict
 * with each typed array replaced by `{ $tensor: k }`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensor } from '@tensorflow/tfjs-core/dist/tensor_types.js';
import type { StateDict } from '../optim/statedict.js';

/** The `format` tag of the optimizer-state weights `getWeights()` writes (one per variable). */
export const TFJS_STATE_FORMAT = 'bitopt.tfjs-variable-state';
/** The version of those weights this build writes and reads. */
export const TFJS_STATE_VERSION = 1;
const HEADER = '/bitopt/header';

/** One variable's optimizer state, decoded. */
export interface VariableState {
  /** The tfjs variable name it was saved from. */
  name: string;
  /** The variable's shape. */
  shape: number[];
  /** The tfjs optimizer class that wrote it, e.g. 'bitopt.Adam8bit'. */
  optimizer: string;
  /** The variable's state as a one-tensor core checkpoint. */
  dict: StateDict;
}

type ArrayKind = 'Float32Array' | 'Uint8Array' | 'Float64Array';

function isTypedArray(v: unknown): v is Float32Array | Uint8Array | Float64Array {
  return v instanceof Float32Array || v instanceof Uint8Array || v instanceof Float64Array;
}

/** Int32 view of `bytes`, zero-padded to whole int32s (a copy). */
function packBytes(bytes: Uint8Array): Int32Array {
  const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  padded.set(bytes);
  return new Int32Array(padded.buffer);
}

function arrayToTensor(a: Float32Array | Uint8Array | Float64Array): tf.Tensor {
  if (a instanceof Float32Array) return tf.tensor1d(a.slice(), 'float32');
  if (a instanceof Uint8Array) return tf.tensor1d(packBytes(a), 'int32');
  return tf.tensor1d(new Int32Array(a.slice().buffer), 'int32');
}

function tensorToArray(values: ArrayLike<number>, dtype: string, kind: ArrayKind, length: number, where: string): Float32Array | Uint8Array | Float64Array {
  const want = kind === 'Float32Array' ? 'float32' : 'int32';
  if (dtype !== want) throw new Error(`setWeights: ${where} must be a ${want} tensor, got ${dtype}`);
  const stored = kind === 'Float32Array' ? length : kind === 'Uint8Array' ? Math.ceil(length / 4) : length * 2;
  if (values.length !== stored) throw new Error(`setWeights: ${where} has ${values.length} values, expected ${stored}`);
  if (kind === 'Float32Array') return Float32Array.from(values);
  const ints = Int32Array.from(values);
  return kind === 'Uint8Array' ? new Uint8Array(ints.buffer, 0, length).slice() : new Float64Array(ints.buffer).slice();
}

/** The weights of one variable's state (tensors the caller owns). */
export function encodeVariableState(state: VariableState): NamedTensor[] {
  const arrays: tf.Tensor[] = [];
  const json = JSON.stringify(
    { format: TFJS_STATE_FORMAT, version: TFJS_STATE_VERSION, name: state.name, shape: state.shape, optimizer: state.optimizer, dict: state.dict },
    (_key, value: unknown) => {
      if (!isTypedArray(value)) return value;
      arrays.push(arrayToTensor(value));
      return { $tensor: arrays.length - 1, kind: value.constructor.name, length: value.length };
    },
  );
  const bytes = new TextEncoder().encode(json);
  const header = new Int32Array(1 + Math.ceil(bytes.length / 4));
  header[0] = bytes.length;
  header.set(packBytes(bytes), 1);
  return [
    { name: state.name + HEADER, tensor: tf.tensor1d(header, 'int32') },
    ...arrays.map((tensor, k) => ({ name: `${state.name}/bitopt/${k}`, tensor })),
  ];
}

/**
 * Splits weights written by `encodeVariableState` (for any number of variables, in order) back
 * into states. Reads the tensors (does not dispose them). Throws naming the first problem.
 */
export async function decodeVariableStates(weights: NamedTensor[]): Promise<VariableState[]> {
  const out: VariableState[] = [];
  let i = 0;
  while (i < weights.length) {
    const w = weights[i];
    if (!w || typeof w.name !== 'string' || !w.name.endsWith(HEADER)) {
      throw new Error(`setWeights: expected a bitopt state header ('<variable>${HEADER}') at weight ${i}, got '${String(w?.name)}': these weights were not written by a bitopt optimizer`);
    }
    if (w.tensor.dtype !== 'int32') throw new Error(`setWeights: ${w.name} must be an int32 tensor, got ${w.tensor.dtype}`);
    const ints = Int32Array.from(await w.tensor.data());
    const n = ints[0];
    if (!(n >= 0 && Math.ceil(n / 4) === ints.length - 1)) throw new Error(`setWeights: ${w.name} is corrupted (byte length ${n}, ${ints.length - 1} words)`);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(new TextDecoder().decode(new Uint8Array(ints.buffer, 4, n))) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`setWeights: ${w.name} is not valid JSON: ${(e as Error).message}`);
    }
    if (parsed.format !== TFJS_STATE_FORMAT) throw new Error(`setWeights: ${w.name} has format ${JSON.stringify(parsed.format)}, expected '${TFJS_STATE_FORMAT}'`);
    if (parsed.version !== TFJS_STATE_VERSION) throw new Error(`setWeights: ${w.name} has version ${String(parsed.version)}; this build reads ${TFJS_STATE_VERSION}`);
    const name = parsed.name as string;
    const refs: { kind: ArrayKind; length: number; k: number }[] = [];
    JSON.stringify(parsed.dict, (_key, v: unknown) => {
      if (v && typeof v === 'object' && '$tensor' in v) refs.push({ ...(v as unknown as { kind: ArrayKind; length: number }), k: (v as { $tensor: number }).$tensor });
      return v;
    });
    const arrays: (Float32Array | Uint8Array | Float64Array)[] = [];
    for (const ref of refs) {
      const t = weights[i + 1 + ref.k];
      const expected = `${name}/bitopt/${ref.k}`;
      if (!t || t.name !== expected) throw new Error(`setWeights: missing weight '${expected}' (got '${String(t?.name)}')`);
      if (!['Float32Array', 'Uint8Array', 'Float64Array'].includes(ref.kind) || !Number.isSafeInteger(ref.length) || ref.length < 0) {
        throw new Error(`setWeights: ${w.name} describes an invalid array ${JSON.stringify(ref)}`);
      }
      arrays[ref.k] = tensorToArray(await t.tensor.data(), t.tensor.dtype, ref.kind, ref.length, expected);
    }
    const dict = JSON.parse(JSON.stringify(parsed.dict), (_key, v: unknown) =>
      v && typeof v === 'object' && '$tensor' in v ? arrays[(v as { $tensor: number }).$tensor] : v,
    ) as StateDict;
    const shape = parsed.shape as number[];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`setWeights: ${w.name} has an invalid shape ${JSON.stringify(shape)}`);
    out.push({ name, shape, optimizer: String(parsed.optimizer), dict });
    i += 1 + refs.length;
  }
  return out;
}
