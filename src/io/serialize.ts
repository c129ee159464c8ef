/**
 * A state dict as one byte string (for files, IndexedDB, network): magic, version, a JSON
 * header describing the structure, the typed arrays' bytes, and a CRC-32 of all of it.
 *
 * Layout (little-endian): "BITOPTSD" | u32 format version | u32 header length H |
 * H bytes of UTF-8 JSON | zero padding to 8 | array bytes (each 8-aligned, zero padded) |
 * u32 CRC-32 of all before.
 *
 * The encoder and the decoder accept exactly the same set of values, and the decoder accepts
 * only bytes the encoder writes (docs/reliability.md, invariant 3):
 *   - a state dict holds plain objects, arrays, finite numbers, strings, booleans, null and
 *     exactly `Float32Array`, `Float64Array`, `Uint8Array` (not subclasses, not other views);
 *     anything else is refused at encode time, so nothing is written that cannot be read back;
 *   - the header must be the canonical JSON the encoder writes (re-encoding it gives the same
 *     text), nested at most MAX_DEPTH deep, without `__proto__`/`constructor`/`prototype` keys;
 *   - the arrays tile the data section exactly, in header order, each in its own 8-aligned
 *     range with zero padding: no range is shared, overlapping, out of bounds or unreferenced.
 * So decoding allocates at most the input's size in typed arrays (plus the parsed header) and
 * works in time linear in the input, and serialize(deserialize(b)) is b byte for byte.
 */
import { READABLE_STATE_DICT_VERSIONS, STATE_DICT_FORMAT, type StateDict } from '../optim/statedict.js';
import { crc32 } from './crc32.js';

const MAGIC = 'BITOPTSD';
/** Version of the binary checkpoint layout `serializeStateDict` writes (the header after the 'BITOPTSD' magic). */
export const SERIALIZED_VERSION = 1;

type Typed = Uint8Array | Float32Array | Float64Array;
type TypedCtor = Uint8ArrayConstructor | Float32ArrayConstructor | Float64ArrayConstructor;

/** The only array types of the format, by name: an own-property lookup, never the prototype chain. */
const TYPES: ReadonlyMap<string, TypedCtor> = new Map<string, TypedCtor>([
  ['Uint8Array', Uint8Array],
  ['Float32Array', Float32Array],
  ['Float64Array', Float64Array],
]);
const TYPE_LIST = [...TYPES.keys()].join(', ');

/** Keys refused anywhere in a state dict or header (prototype pollution in later copies). */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** Deepest nesting of objects and arrays (a real state dict is 5 deep). */
export const MAX_DEPTH = 32;
/** Bytes before the header and after the data (magic, version, header length; CRC). */
const FIXED_BYTES = 20;

interface ArrayRef {
  $array: string;
  offset: number;
  length: number;
}
const REF_KEYS = ['$array', 'offset', 'length'];

/** Rounds up to a multiple of 8; arithmetic, so sizes past 2^31 stay correct. */
const align8 = (n: number) => n + ((8 - (n % 8)) % 8);

const pathOf = (path: readonly (string | number)[]) =>
  path.length === 0 ? 'dict' : 'dict' + path.map((k) => (typeof k === 'number' ? `[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`)).join('');

/** A short description of a value for error messages. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Promise) return 'a Promise (did you forget await?)';
  if (typeof v === 'function') return `a function${v.name ? ` (${v.name})` : ''} (did you forget to call it?)`;
  if (typeof v !== 'object') {
    const s = typeof v === 'number' || typeof v === 'bigint' ? String(v) : typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : '';
    return s ? `${typeof v} ${s}` : typeof v;
  }
  if (Array.isArray(v)) return 'an array';
  const proto = Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null;
  if (proto === Object.prototype || proto === null) return 'an object';
  const name = proto.constructor?.name;
  return typeof name === 'string' && name ? `${/^[AEIO]/.test(name) ? 'an' : 'a'} ${name}` : 'an object';
}

/** The format's name of exactly one of the three array types, else null (subclasses and other views are not). */
function typedName(v: object): string | null {
  const proto = Object.getPrototypeOf(v);
  for (const [name, Type] of TYPES) if (proto === Type.prototype) return name;
  return null;
}

function isPlainObject(v: object): boolean {
  return Object.getPrototypeOf(v) === Object.prototype;
}

/**
 * The structure every state dict has (what `loadStateDict` and this format rely on); the
 * content (options, shapes, codes) is validated by the optimizer's `loadStateDict`.
 */
function checkShape(d: Record<string, unknown>, fail: (path: (string | number)[], what: string) => never): void {
  const obj = (v: unknown, path: (string | number)[]): Record<string, unknown> => {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) fail(path, `expected an object, got ${describe(v)}`);
    return v as Record<string, unknown>;
  };
  const arr = (v: unknown, path: (string | number)[]): unknown[] => {
    if (!Array.isArray(v)) fail(path, `expected an array, got ${describe(v)}`);
    return v;
  };
  const count = (v: unknown, path: (string | number)[]) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(path, `expected a non-negative integer, got ${describe(v)}`);
  };
  const str = (v: unknown, path: (string | number)[]) => {
    if (typeof v !== 'string' || v.length === 0) fail(path, `expected a non-empty string, got ${describe(v)}`);
  };
  if (d.format !== STATE_DICT_FORMAT) fail(['format'], `not a bitopt optimizer state: format must be ${JSON.stringify(STATE_DICT_FORMAT)}, got ${describe(d.format)}`);
  if (!READABLE_STATE_DICT_VERSIONS.includes(d.version as number)) {
    fail(['version'], `unsupported state dict version ${describe(d.version)} (this build reads ${READABLE_STATE_DICT_VERSIONS.join(' and ')})`);
  }
  str(d.optimizer, ['optimizer']);
  str(d.rule, ['rule']);
  arr(d.groups, ['groups']).forEach((g, i) => {
    const group = obj(g, ['groups', i]);
    obj(group.options, ['groups', i, 'options']);
    arr(group.params, ['groups', i, 'params']).forEach((p, j) => count(p, ['groups', i, 'params', j]));
  });
  if (d.overrides !== undefined) {
    arr(d.overrides, ['overrides']).forEach((o, i) => {
      const override = obj(o, ['overrides', i]);
      count(override.param, ['overrides', i, 'param']);
      obj(override.options, ['overrides', i, 'options']);
    });
  }
  arr(d.tensors, ['tensors']).forEach((t, i) => {
    const tensor = obj(t, ['tensors', i]);
    count(tensor.length, ['tensors', i, 'length']);
    count(tensor.step, ['tensors', i, 'step']);
    arr(tensor.states, ['tensors', i, 'states']).forEach((s, k) => {
      const state = obj(s, ['tensors', i, 'states', k]);
      str(state.format, ['tensors', i, 'states', k, 'format']);
      str(state.sign, ['tensors', i, 'states', k, 'sign']);
    });
    if (tensor.clipHistory !== null && tensor.clipHistory !== undefined) {
      const h = obj(tensor.clipHistory, ['tensors', i, 'clipHistory']);
      if (!(h.norms instanceof Float64Array)) fail(['tensors', i, 'clipHistory', 'norms'], `expected a Float64Array, got ${describe(h.norms)}`);
      count(h.count, ['tensors', i, 'clipHistory', 'count']);
    }
  });
}

/**
 * Walks `v` (the state dict), checking every value is one the format round-trips exactly, and
 * builds the JSON tree to write: typed arrays replaced by references in visiting order. Each
 * property is read once, so getters cannot show the check one value and the encoder another.
 */
function encodeTree(v: unknown, path: (string | number)[], arrays: Typed[], offset: { bytes: number }): unknown {
  const fail = (what: string): never => {
    throw new Error(`serializeStateDict: ${pathOf(path)}: ${what}`);
  };
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      if (!Number.isFinite(v)) fail(`${v} cannot be stored (JSON has no NaN or Infinity; it would read back as null)`);
      return v === 0 ? 0 : v; // -0 is written as 0
    case 'object':
      break;
    default:
      return fail(`${describe(v)} cannot be stored (a state dict holds plain objects, arrays, finite numbers, strings, booleans, null and ${TYPE_LIST})`);
  }
  if (v === null) return null;
  if (path.length > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH} levels (a cycle?)`);
  if (ArrayBuffer.isView(v)) {
    const name = typedName(v);
    if (name === null) {
      const base = [...TYPES].find(([, T]) => v instanceof T)?.[0];
      fail(base
        ? `${describe(v)} (a subclass of ${base}) cannot be stored: it would read back as a plain ${base}; pass a ${base}`
        : `${describe(v)} cannot be stored (the format holds only ${TYPE_LIST})`);
    }
    const a = v as Typed;
    const ref: ArrayRef = { $array: name!, offset: offset.bytes, length: a.length };
    arrays.push(a);
    offset.bytes = align8(offset.bytes + a.byteLength);
    return ref;
  }
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) fail(`${describe(v)} (an Array subclass) cannot be stored`);
    const out: unknown[] = [];
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) fail(`element ${i} is a hole (sparse array)`);
      path.push(i);
      out.push(encodeTree(v[i], path, arrays, offset));
      path.pop();
    }
    return out;
  }
  if (!isPlainObject(v)) fail(`${describe(v)} cannot be stored (expected a plain object, an array, or one of ${TYPE_LIST})`);
  if (Object.getOwnPropertySymbols(v).length > 0) fail('symbol keys cannot be stored');
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v)) {
    if (FORBIDDEN_KEYS.has(key)) fail(`key ${JSON.stringify(key)} is not allowed`);
    if (key === '$array') fail('key "$array" is reserved for array references');
    path.push(key);
    const value = encodeTree((v as Record<string, unknown>)[key], path, arrays, offset);
    path.pop();
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Encodes a state dict (from `optimizer.stateDict()`) to bytes. Throws, naming the value and
 * its path, on anything that is not a state dict or would not read back exactly.
 */
export function serializeStateDict(dict: StateDict): Uint8Array {
  if (dict === null || typeof dict !== 'object' || Array.isArray(dict) || ArrayBuffer.isView(dict) || !isPlainObject(dict)) {
    throw new Error(`serializeStateDict: expected a state dict (from optimizer.stateDict()), got ${describe(dict)}`);
  }
  const arrays: Typed[] = [];
  const offset = { bytes: 0 };
  const tree = encodeTree(dict, [], arrays, offset) as Record<string, unknown>;
  // The shape is checked on the copy just built (the same values that are written).
  checkShape(rebuildArrays(tree, arrays), (path, what) => {
    throw new Error(`serializeStateDict: ${pathOf(path)}: ${what}`);
  });
  const headerBytes = new TextEncoder().encode(JSON.stringify(tree));
  const dataStart = align8(16 + headerBytes.length);
  const out = new Uint8Array(dataStart + offset.bytes + 4);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, SERIALIZED_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  out.set(headerBytes, 16);
  let at = dataStart;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at = align8(at + a.byteLength);
  }
  view.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

/** A view of `tree` for the shape check: references replaced by the arrays they stand for (no copies). */
function rebuildArrays(tree: Record<string, unknown>, arrays: Typed[]): Record<string, unknown> {
  let next = 0;
  const swap = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map(swap);
    if (Object.hasOwn(v, '$array')) return arrays[next++];
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: swap(x), enumerable: true, writable: true, configurable: true });
    return out;
  };
  return swap(tree) as Record<string, unknown>;
}

function fail(what: string): never {
  throw new Error(`deserializeStateDict: ${what}`);
}

/** A Uint8Array over exactly the bytes of `input` (any ArrayBufferView or ArrayBuffer), copied if shared memory could change under us. */
function asBytes(input: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (input instanceof ArrayBuffer) bytes = new Uint8Array(input);
  else if (ArrayBuffer.isView(input)) bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  else fail(`expected a Uint8Array, got ${describe(input)}`);
  if (typeof SharedArrayBuffer !== 'undefined' && bytes.buffer instanceof SharedArrayBuffer) {
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    bytes = copy;
  }
  return bytes;
}

interface PendingRef {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
  ref: ArrayRef;
  Type: TypedCtor;
  where: string;
}

/**
 * Checks the parsed header: depth, keys, values (the encoder's set) and array references (well
 * formed, known type); collects the references in visiting order (the encoder's order).
 */
function scanHeader(v: unknown, path: (string | number)[], refs: PendingRef[], parent: PendingRef['parent'] | null): void {
  const where = () => `header ${pathOf(path)}`;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(`${where()}: number out of range`);
    return;
  }
  if (typeof v !== 'object') fail(`${where()}: unexpected ${typeof v}`);
  if (path.length > MAX_DEPTH) fail(`header nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      scanHeader(v[i], path, refs, v);
      path.pop();
    }
    return;
  }
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (const key of keys) if (FORBIDDEN_KEYS.has(key)) fail(`${where()}: key ${JSON.stringify(key)} is not allowed`);
  if (Object.hasOwn(obj, '$array')) {
    if (parent === null) fail('header is an array reference, not a state dict');
    if (keys.length !== 3 || keys.some((k, i) => k !== REF_KEYS[i])) fail(`${where()}: an array reference has exactly the keys $array, offset, length (got ${keys.slice(0, 5).join(', ')})`);
    const ref = obj as unknown as ArrayRef;
    const Type = typeof ref.$array === 'string' ? TYPES.get(ref.$array) : undefined;
    if (Type === undefined) fail(`${where()}: unknown array type ${JSON.stringify(ref.$array).slice(0, 60)} (allowed: ${TYPE_LIST})`);
    if (!Number.isSafeInteger(ref.offset) || !Number.isSafeInteger(ref.length) || ref.offset < 0 || ref.length < 0) {
      fail(`${where()}: bad array reference (offset ${String(ref.offset).slice(0, 30)}, length ${String(ref.length).slice(0, 30)})`);
    }
    refs.push({ parent: parent!, key: path[path.length - 1], ref, Type: Type!, where: where() });
    return;
  }
  for (const key of keys) {
    path.push(key);
    scanHeader(obj[key], path, refs, obj);
    path.pop();
  }
}

/**
 * Decodes bytes written by `serializeStateDict` (any Uint8Array or other view: only its own
 * bytes are read); throws naming the problem on any damage. The result owns its memory.
 */
export function deserializeStateDict(input: Uint8Array): StateDict {
  const bytes = asBytes(input);
  if (bytes.length < FIXED_BYTES) fail(`truncated: ${bytes.length} bytes is shorter than any checkpoint`);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) fail('not a bitopt checkpoint (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== SERIALIZED_VERSION) fail(`unsupported checkpoint version ${version} (this build reads ${SERIALIZED_VERSION})`);
  // The header is bounded by the input: it must fit between the fixed fields.
  const headerLength = view.getUint32(12, true);
  const dataStart = align8(16 + headerLength);
  if (headerLength > bytes.length - FIXED_BYTES || dataStart + 4 > bytes.length) fail(`truncated: header of ${headerLength} bytes does not fit in ${bytes.length}`);
  const stored = view.getUint32(bytes.length - 4, true);
  const actual = crc32(bytes.subarray(0, bytes.length - 4));
  if (stored !== actual) fail(`checksum mismatch (stored ${stored.toString(16)}, computed ${actual.toString(16)}): the file is damaged or truncated`);
  const dataLength = bytes.length - 4 - dataStart;

  let text: string;
  let header: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(16, 16 + headerLength));
    header = JSON.parse(text);
  } catch (err) {
    fail(`header is not valid UTF-8 JSON: ${String((err as Error).message).slice(0, 120)}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not an object');
  for (let i = 16 + headerLength; i < dataStart; i++) if (bytes[i] !== 0) fail(`non-zero padding byte at ${i} after the header`);

  const refs: PendingRef[] = [];
  scanHeader(header, [], refs, null);
  // Canonical form: exactly the text the encoder writes for this tree (no duplicate keys,
  // whitespace, escapes or number spellings of its own), so re-encoding gives the same bytes.
  const canonical = JSON.stringify(header);
  if (canonical !== text!) {
    let at = 0;
    while (at < canonical.length && canonical[at] === text![at]) at++;
    fail(`header is not in the canonical form serializeStateDict writes (differs at character ${at})`);
  }
  // The arrays tile the data section exactly, in header order: each has its own 8-aligned
  // range, padded with zeros, and nothing is left over. So no byte is decoded twice and the
  // arrays allocated add up to at most the input's size.
  let expected = 0;
  for (const { ref, Type, where } of refs) {
    const byteLength = ref.length * Type.BYTES_PER_ELEMENT;
    if (ref.offset !== expected) {
      fail(`${where}: array at offset ${ref.offset} ${ref.offset < expected ? 'overlaps the previous array' : 'leaves a gap'} (arrays must tile the data in order; expected offset ${expected})`);
    }
    if (ref.offset + byteLength > dataLength) fail(`array of ${ref.length} ${ref.$array} at ${ref.offset} runs past the end of the data`);
    expected = align8(ref.offset + byteLength);
    if (expected > dataLength) fail(`${where}: the padding of the array at ${ref.offset} runs past the end of the data`);
    for (let i = ref.offset + byteLength; i < expected; i++) if (bytes[dataStart + i] !== 0) fail(`${where}: non-zero padding byte after the array at ${ref.offset}`);
  }
  if (expected !== dataLength) fail(`${dataLength - expected} bytes of data after the last array are not referenced by the header`);
  for (const { parent, key, ref, Type } of refs) {
    const byteLength = ref.length * Type.BYTES_PER_ELEMENT;
    // Copy into fresh, aligned memory owned by the result, independent of `input`.
    const buffer = new ArrayBuffer(byteLength);
    new Uint8Array(buffer).set(bytes.subarray(dataStart + ref.offset, dataStart + ref.offset + byteLength));
    (parent as Record<string | number, unknown>)[key] = new Type(buffer);
  }
  checkShape(header as Record<string, unknown>, (path, what) => fail(`${pathOf(path)}: ${what}`));
  return header as StateDict;
}
