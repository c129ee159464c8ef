/**
 * A state dict as one byte string (for files, IndexedDB, network): magic, version, a JSON
 * header describing the structure, the typed arrays' bytes, and a CRC-32 of all of it.
 * Decoding checks magic, version, every size against the buffer, and the checksum before it
 * builds anything; the optimizer's loadStateDict then validates the content itself.
 *
 * Layout (little-endian): "BITOPTSD" | u32 format version | u32 header length H |
 * H bytes of UTF-8 JSON | padding to 8 | array bytes (each 8-aligned) | u32 CRC-32 of all before.
 */
import type { StateDict } from '../optim/statedict.js';
import { crc32 } from './crc32.js';

const MAGIC = 'BITOPTSD';
export const SERIALIZED_VERSION = 1;

type Typed = Uint8Array | Float32Array | Float64Array;
const TYPES = { Uint8Array, Float32Array, Float64Array } as const;
type TypeName = keyof typeof TYPES;

interface ArrayRef {
  $array: TypeName;
  offset: number;
  length: number;
}

const align8 = (n: number) => (n + 7) & ~7;

function isTyped(v: unknown): v is Typed {
  return v instanceof Uint8Array || v instanceof Float32Array || v instanceof Float64Array;
}

/** Encodes a state dict (from `optimizer.stateDict()`) to bytes. */
export function serializeStateDict(dict: StateDict): Uint8Array {
  const arrays: Typed[] = [];
  let dataBytes = 0;
  const header = JSON.stringify(dict, (_key, value: unknown) => {
    if (!isTyped(value)) return value;
    const ref: ArrayRef = { $array: value.constructor.name as TypeName, offset: dataBytes, length: value.length };
    arrays.push(value);
    dataBytes = align8(dataBytes + value.byteLength);
    return ref;
  });
  const headerBytes = new TextEncoder().encode(header);
  const dataStart = align8(16 + headerBytes.length);
  const out = new Uint8Array(dataStart + dataBytes + 4);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, SERIALIZED_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  out.set(headerBytes, 16);
  let offset = dataStart;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset);
    offset = align8(offset + a.byteLength);
  }
  view.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

function fail(what: string): never {
  throw new Error(`deserializeStateDict: ${what}`);
}

/** Decodes bytes written by `serializeStateDict`; throws naming the problem on any damage. */
export function deserializeStateDict(bytes: Uint8Array): StateDict {
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array');
  if (bytes.length < 20) fail(`truncated: ${bytes.length} bytes is shorter than any checkpoint`);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) fail('not a bitopt checkpoint (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== SERIALIZED_VERSION) fail(`unsupported checkpoint version ${version} (this build reads ${SERIALIZED_VERSION})`);
  const headerLength = view.getUint32(12, true);
  const dataStart = align8(16 + headerLength);
  if (dataStart + 4 > bytes.length) fail(`truncated: header of ${headerLength} bytes does not fit in ${bytes.length}`);
  const stored = view.getUint32(bytes.length - 4, true);
  const actual = crc32(bytes.subarray(0, bytes.length - 4));
  if (stored !== actual) fail(`checksum mismatch (stored ${stored.toString(16)}, computed ${actual.toString(16)}): the file is damaged or truncated`);
  const dataLength = bytes.length - 4 - dataStart;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(16, 16 + headerLength)), (_key, value: unknown) => {
      if (value === null || typeof value !== 'object' || !('$array' in value)) return value;
      const ref = value as ArrayRef;
      const Type = TYPES[ref.$array];
      if (!Type) fail(`unknown array type ${JSON.stringify(ref.$array)}`);
      if (!Number.isSafeInteger(ref.offset) || !Number.isSafeInteger(ref.length) || ref.offset < 0 || ref.length < 0 || ref.offset % 8 !== 0) {
        fail(`bad array reference ${JSON.stringify(ref)}`);
      }
      const byteLength = ref.length * Type.BYTES_PER_ELEMENT;
      if (ref.offset + byteLength > dataLength) fail(`array of ${ref.length} ${ref.$array} at ${ref.offset} runs past the end of the data`);
      // Copy, so the result owns aligned memory independent of `bytes`.
      const copy = bytes.slice(dataStart + ref.offset, dataStart + ref.offset + byteLength);
      return new Type(copy.buffer);
    });
  } catch (err) {
    if ((err as Error).message.startsWith('deserializeStateDict')) throw err;
    fail(`header is not valid JSON: ${(err as Error).message}`);
  }
  if (header === null || typeof header !== 'object') fail('header is not an object');
  return header as StateDict;
}
