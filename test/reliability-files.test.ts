/**
 * Reliability of checkpoint files and of checkpoint decoding (docs/reliability.md, invariants
 * 3 and 4), one test per failure class an outside probe of the public API found:
 *   files:    concurrent saves to one path; a planted symlink at a predictable temporary name;
 *             a failed rename leaving a temporary file; hostile arguments to save replacing
 *             the good file; loads of devices and FIFOs reading without bound or hanging;
 *   decoding: overlapping or repeated array ranges (allocation far beyond the input); a Node
 *             Buffer view decoding bytes outside the view; `$array` type names found on the
 *             prototype chain; values the encoder wrote that do not read back;
 *   and a property test mutating serialized bytes (truncation, bit flips, header edits with a
 *   recomputed CRC): decoding throws a clear Error or returns a dict that re-serializes to the
 *   same bytes, and never allocates more typed-array memory than the input's size.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, watch } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as bitopt from '../src/index.js';
import type { StateDict } from '../src/index.js';
import { crc32 } from '../src/io/crc32.js';
import { loadStateDictFile, saveStateDictFile } from '../src/node/index.js';
import { randn, rng } from './helpers/float64-rules.js';

/** RELIABILITY_RUNS=k multiplies the number of fuzzed inputs (CI: 1). */
const RUNS = Math.max(1, Number(process.env.RELIABILITY_RUNS ?? 1));

/** A trained state dict: an 8-bit tensor with clipping history and a float32 one; `seed` varies sizes and values. */
async function trainedDict(seed: number, sizes = [5000, 100]): Promise<StateDict> {
  const rand = rng(seed);
  const ps = sizes.map((n) => randn(n, rand));
  const opt = new bitopt.AdamW8bit(ps, { percentileClipping: 95, lr: 1e-3 * (1 + seed) });
  for (let t = 0; t < 2; t++) await opt.step(ps.map((p) => randn(p.length, rand)));
  return opt.stateDict();
}

const tempDir = (what: string) => mkdtemp(join(tmpdir(), `bitopt-${what}-`));
const tmpFiles = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.tmp'));

/** `p` settles within `ms`, else the test fails (rather than hanging). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: did not settle within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- helpers to take serialized bytes apart and put them back together with a valid CRC ----

interface Parts {
  header: string;
  /** The data section (arrays and their padding). */
  data: Uint8Array;
}

function split(bytes: Uint8Array): Parts {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = view.getUint32(12, true);
  const dataStart = Math.ceil((16 + h) / 8) * 8;
  return { header: new TextDecoder().decode(bytes.subarray(16, 16 + h)), data: bytes.slice(dataStart, bytes.length - 4) };
}

/** Bytes with this header text and data section, the header length and the checksum correct. */
function assemble({ header, data }: Parts): Uint8Array {
  const h = new TextEncoder().encode(header);
  const dataStart = Math.ceil((16 + h.length) / 8) * 8;
  const out = new Uint8Array(dataStart + data.length + 4);
  out.set(new TextEncoder().encode('BITOPTSD'));
  const view = new DataView(out.buffer);
  view.setUint32(8, 1, true);
  view.setUint32(12, h.length, true);
  out.set(h, 16);
  out.set(data, dataStart);
  view.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

function reseal(bytes: Uint8Array): Uint8Array {
  if (bytes.length >= 4) new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

/** Total bytes of every typed array in a decoded value. */
function typedBytes(v: unknown): number {
  if (ArrayBuffer.isView(v)) return v.byteLength;
  if (Array.isArray(v)) return v.reduce((s: number, x) => s + typedBytes(x), 0);
  if (v && typeof v === 'object') return Object.values(v).reduce((s: number, x) => s + typedBytes(x), 0);
  return 0;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

describe('reliability: checkpoint files (invariant 4: a save never destroys the last good checkpoint)', () => {
  it('20 concurrent saves of different dicts to one path: each atomic, the file is one of them, no temporary file left', async (t) => {
    const dir = await tempDir('concurrent');
    const path = join(dir, 'opt.ckpt');
    // Different sizes, so two writers sharing one file would leave a torn mix.
    const dicts = await Promise.all(Array.from({ length: 20 }, (_, i) => trainedDict(100 + i, [3000 + 257 * i, 50 + i])));
    const rounds = 3;
    for (let round = 0; round < rounds; round++) {
      const results = await Promise.allSettled(dicts.map((d) => saveStateDictFile(path, d)));
      const failed = results.filter((r) => r.status === 'rejected');
      assert.equal(failed.length, 0, `every concurrent save reports success: ${failed.map((r) => String((r as PromiseRejectedResult).reason)).join('; ')}`);
      const back = await loadStateDictFile(path);
      assert.ok(dicts.some((d) => { try { assert.deepEqual(back, d); return true; } catch { return false; } }), 'the file is exactly one of the saved dicts');
      assert.deepEqual(await readdir(dir), ['opt.ckpt'], 'no temporary file left');
    }
    t.diagnostic(`inputs tried: ${rounds} rounds x ${dicts.length} concurrent saves`);
  });

  it('temporary names are unguessable and created exclusively: symlinks planted at predictable names redirect nothing', async (t) => {
    const dir = await tempDir('symlink');
    const path = join(dir, 'opt.ckpt');
    const victim = join(dir, 'victim.txt');
    await writeFile(victim, 'precious');
    const dict = await trainedDict(1);
    // Every name a pid + time scheme could pick in the next 1.5 s, and a few obvious ones.
    const planted: string[] = ['.opt.ckpt.tmp', 'opt.ckpt.tmp', `.opt.ckpt.${process.pid}.tmp`, 'opt.ckpt~'];
    const now = Date.now();
    for (let ms = now - 20; ms < now + 1500; ms++) planted.push(`.opt.ckpt.${process.pid}.${ms}.tmp`);
    await Promise.all(planted.map((name) => symlink(victim, join(dir, name))));
    // Watch the directory to see the temporary names actually used.
    const seen = new Set<string>();
    const watcher = watch(dir, (_event, name) => {
      if (name && name.endsWith('.tmp') && !planted.includes(String(name))) seen.add(String(name));
    });
    const saves = 10;
    for (let i = 0; i < saves; i++) await saveStateDictFile(path, dict);
    await new Promise((r) => setTimeout(r, 100));
    watcher.close();
    assert.equal(await readFile(victim, 'utf8'), 'precious', 'the symlinks target is untouched');
    for (const name of planted) {
      const st = await lstat(join(dir, name));
      assert.ok(st.isSymbolicLink() && (await readlink(join(dir, name))) === victim, `${name} is still the planted symlink`);
    }
    assert.ok((await lstat(path)).isFile(), 'the checkpoint is a regular file, not a planted link');
    assert.deepEqual(await loadStateDictFile(path), dict);
    assert.ok(seen.size >= 1, 'the watcher saw the temporary files');
    for (const name of seen) assert.match(name, /^\.opt\.ckpt\.[0-9a-f]{24}\.tmp$/, `temporary name ${name} carries 96 random bits (no pid, no time)`);
    assert.equal(seen.size, saves, 'a fresh name for every save');
    const st = await lstat(path);
    assert.equal(st.mode & 0o777, 0o600, 'created with mode 0o600');
    t.diagnostic(`inputs tried: ${planted.length} planted symlinks, ${saves} saves, ${seen.size} distinct temporary names observed`);
  });

  it('a failed rename or create leaves no temporary file', async (t) => {
    const dir = await tempDir('rename');
    const dict = await trainedDict(2);
    // The target is a directory (non-empty, so no platform can rename over it).
    const target = join(dir, 'opt.ckpt');
    await mkdir(target);
    await writeFile(join(target, 'keep'), 'x');
    await assert.rejects(saveStateDictFile(target, dict), /saveStateDictFile: cannot replace .*opt\.ckpt: E(ISDIR|EXIST|NOTEMPTY|PERM)/);
    assert.deepEqual((await readdir(dir)).sort(), ['opt.ckpt'], 'no temporary file beside the directory');
    assert.deepEqual(await readdir(target), ['keep']);
    // The empty path: refused before anything is created (in the working directory).
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      await assert.rejects(saveStateDictFile('', dict), /saveStateDictFile: path is empty/);
    } finally {
      process.chdir(cwd);
    }
    assert.deepEqual((await readdir(dir)).sort(), ['opt.ckpt']);
    // A directory that does not exist: nothing is created anywhere.
    await assert.rejects(saveStateDictFile(join(dir, 'missing', 'opt.ckpt'), dict), /saveStateDictFile: cannot create a temporary file in .*missing: ENOENT/);
    assert.deepEqual((await readdir(dir)).sort(), ['opt.ckpt']);
    t.diagnostic('inputs tried: 3 failing saves (directory target, empty path, missing directory), 0 temporary files left');
  });

  it('hostile arguments to save are refused before the disk is touched: the old file stays byte-identical', async (t) => {
    const dir = await tempDir('hostile');
    const path = join(dir, 'opt.ckpt');
    const rand = rng(3);
    const ps = [randn(5000, rand), randn(100, rand)];
    const opt = new bitopt.AdamW8bit(ps, { percentileClipping: 95 });
    await opt.step(ps.map((p) => randn(p.length, rand)));
    const good = opt.stateDict();
    await saveStateDictFile(path, good);
    const before = await readFile(path);
    const edit = (f: (d: any) => void) => {
      const d = structuredClone(good) as any;
      f(d);
      return d;
    };
    class Sub extends Float32Array {}
    const cases: [string, unknown, RegExp][] = [
      ['opt.stateDict (not called)', opt.stateDict, /got a function \(stateDict\) \(did you forget to call it\?\)/],
      ['null', null, /expected a state dict .*got null/],
      ['undefined', undefined, /expected a state dict .*got undefined/],
      ['a Promise', Promise.resolve(good), /got a Promise \(did you forget await\?\)/],
      ['{}', {}, /dict\.format: not a bitopt optimizer state/],
      ['[]', [], /expected a state dict .*got an array/],
      ['a string', 'dict', /expected a state dict .*got string/],
      ['a Map', new Map([['format', 'bitopt.optimizer-state']]), /got a Map/],
      ['serialized bytes', bitopt.serializeStateDict(good), /got a Uint8Array/],
      ['wrong format', edit((d) => (d.format = 'x')), /dict\.format: not a bitopt optimizer state/],
      ['wrong version', edit((d) => (d.version = 3)), /dict\.version: unsupported state dict version number 3/],
      ['tensors not an array', edit((d) => (d.tensors = {})), /dict\.tensors: expected an array, got an object/],
      ['a tensor null', edit((d) => (d.tensors[1] = null)), /dict\.tensors\[1\]: expected an object, got null/],
      ['states missing', edit((d) => delete d.tensors[0].states), /dict\.tensors\[0\]\.states: expected an array, got undefined/],
      ['clip norms a plain array', edit((d) => (d.tensors[0].clipHistory.norms = [1, 2])), /clipHistory\.norms: expected a Float64Array, got an array/],
      ['Int32Array codes', edit((d) => (d.tensors[0].states[0].codes = new Int32Array(5000))), /codes: an Int32Array cannot be stored/],
      ['Float32Array subclass', edit((d) => (d.tensors[0].states[0].absmax = new Sub(20))), /absmax: a Sub \(a subclass of Float32Array\) cannot be stored/],
      ['NaN option', edit((d) => (d.groups[0].options.lr = NaN)), /options\.lr: NaN cannot be stored/],
      ['undefined value', edit((d) => (d.groups[0].options.lr = undefined)), /options\.lr: undefined cannot be stored/],
      ['a cycle', edit((d) => (d.groups[0].options.self = d)), /nested deeper than 32 levels/],
    ];
    for (const [what, value, re] of cases) {
      await assert.rejects(saveStateDictFile(path, value as StateDict), (e: Error) => {
        assert.ok(e instanceof Error && e.message.startsWith(`saveStateDictFile: refusing to write ${path}: serializeStateDict: `), `${what}: ${e.message}`);
        assert.match(e.message, re, what);
        return true;
      }, what);
      assert.ok(sameBytes(await readFile(path), before), `${what}: the old checkpoint is byte-identical`);
      assert.deepEqual(await readdir(dir), ['opt.ckpt'], `${what}: nothing else written`);
    }
    // A structured clone is a state dict: accepted.
    await saveStateDictFile(path, structuredClone(good));
    assert.ok(sameBytes(await readFile(path), before));
    t.diagnostic(`inputs tried: ${cases.length} hostile arguments, each refused, file unchanged`);
  });

  it('loads accept only regular files: /dev/zero, a FIFO, a directory are refused at once; size is checked before reading', async (t) => {
    const dir = await tempDir('load');
    const tried: string[] = [];
    if (process.platform !== 'win32') {
      const t0 = performance.now();
      await within(assert.rejects(loadStateDictFile('/dev/zero'), /loadStateDictFile: \/dev\/zero is a character device, not a regular file/), 2000, '/dev/zero');
      assert.ok(performance.now() - t0 < 2000);
      tried.push('/dev/zero');
      const fifo = join(dir, 'pipe');
      execFileSync('mkfifo', [fifo]);
      const load = loadStateDictFile(fifo);
      try {
        await within(assert.rejects(load, /loadStateDictFile: .*pipe is a FIFO, not a regular file/), 2000, 'FIFO');
      } finally {
        // If a load is stuck in open() waiting for a writer, release it so the process can exit.
        const w = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => null);
        await w?.close();
        await load.catch(() => {});
      }
      tried.push('FIFO');
    }
    await assert.rejects(loadStateDictFile(dir), /loadStateDictFile: .* is a directory, not a regular file/);
    tried.push('directory');
    // A sparse file larger than any buffer: refused from fstat's size, nothing allocated.
    const huge = join(dir, 'huge.ckpt');
    const h = await open(huge, 'w');
    await h.truncate(2 ** 32 + 4096);
    await h.close();
    const t0 = performance.now();
    await assert.rejects(loadStateDictFile(huge), /loadStateDictFile: .*huge\.ckpt is 4294971392 bytes, larger than the largest checkpoint/);
    assert.ok(performance.now() - t0 < 2000);
    tried.push('4 GiB sparse file');
    await assert.rejects(loadStateDictFile(join(dir, 'absent')), /loadStateDictFile: cannot open .*absent: ENOENT/);
    t.diagnostic(`inputs tried: ${tried.join(', ')}, missing file`);
  });
});

describe('reliability: checkpoint decoding (invariant 3: bounded work and memory)', () => {
  it('array ranges that repeat, overlap, leave gaps or run past the data are rejected', async (t) => {
    const bytes = bitopt.serializeStateDict(await trainedDict(4));
    const { header, data } = split(bytes);
    const codes = JSON.parse(header).tensors[0].states[0].codes; // 5000 bytes, after the 1 KiB map
    assert.deepEqual(codes, { $array: 'Uint8Array', offset: 1024, length: 5000 });
    const cases: [string, (h: any) => void, RegExp][] = [
      ['a second state shares the first one\'s codes', (x) => (x.tensors[0].states[1].codes = { ...codes }), /overlaps the previous array/],
      ['an extra key repeats one 5 KB range 2000 times', (x) => (x.extra = Array.from({ length: 2000 }, () => ({ ...codes }))), /overlaps the previous array/],
      ['two arrays swap places', (x) => {
        const [a, b] = [x.tensors[0].states[0].absmax, x.tensors[0].states[1].codes];
        [x.tensors[0].states[0].absmax, x.tensors[0].states[1].codes] = [{ ...a, offset: b.offset }, { ...b, offset: a.offset }];
      }, /(overlaps the previous array|leaves a gap)/],
      ['an array shortened (gap before the next)', (x) => (x.tensors[0].states[0].codes = { ...codes, length: 4000 }), /leaves a gap/],
      ['the last array dropped (unreferenced data)', (x) => (x.tensors[1].clipHistory = null), /bytes of data after the last array are not referenced/],
    ];
    for (const [what, f, re] of cases) {
      const x = JSON.parse(header);
      f(x);
      assert.throws(() => bitopt.deserializeStateDict(assemble({ header: JSON.stringify(x), data })), re, what);
    }
    // The probe's case at scale: 1 MiB of data referenced 200 times would allocate 200 MiB.
    const big = new Uint8Array(1 << 20);
    const bigHeader = JSON.parse(header);
    bigHeader.extra = Array.from({ length: 200 }, () => ({ $array: 'Uint8Array', offset: data.length, length: big.length }));
    const bigData = new Uint8Array(data.length + big.length);
    bigData.set(data);
    const t0 = performance.now();
    assert.throws(() => bitopt.deserializeStateDict(assemble({ header: JSON.stringify(bigHeader), data: bigData })), /overlaps the previous array/);
    assert.ok(performance.now() - t0 < 1000);
    // Padding bytes are part of the format: non-zero padding is damage, not slack (5001 codes: 7 bytes of padding).
    const odd = split(bitopt.serializeStateDict(await trainedDict(4, [5001, 100])));
    const oddCodes = JSON.parse(odd.header).tensors[0].states[0].codes;
    assert.equal(oddCodes.length, 5001);
    const padded = odd.data.slice();
    padded[oddCodes.offset + 5001 + 3] = 1;
    assert.doesNotThrow(() => bitopt.deserializeStateDict(assemble(odd)));
    assert.throws(() => bitopt.deserializeStateDict(assemble({ header: odd.header, data: padded })), /codes: non-zero padding byte after the array at 1024/);
    t.diagnostic(`inputs tried: ${cases.length + 2} hostile layouts, each rejected`);
  });

  it('a Buffer view into a shared pool (byteOffset != 0) decodes only its own bytes', async () => {
    const rand = rng(5);
    const p = randn(60, rand);
    const opt = new bitopt.Lion([p]);
    await opt.step([randn(60, rand)]);
    const dict = opt.stateDict();
    const bytes = bitopt.serializeStateDict(dict);
    assert.ok(bytes.length < 2048, 'small enough for Node to place it in its shared Buffer pool');
    const pooled = Buffer.from(bytes);
    const inPool = Buffer.concat([Buffer.alloc(24, 0xaa), pooled, Buffer.alloc(40, 0xbb)]).subarray(24, 24 + bytes.length);
    for (const [what, view] of [
      ['Buffer.from (pool)', pooled],
      ['Buffer view at offset 24', inPool],
      ['DataView', new DataView(inPool.buffer, inPool.byteOffset, inPool.byteLength)],
    ] as const) {
      assert.ok(what === 'Buffer.from (pool)' || view.byteOffset !== 0, what);
      const back = bitopt.deserializeStateDict(view as unknown as Uint8Array);
      assert.deepEqual(back, dict, what);
      assert.equal(typedBytes(back), typedBytes(dict), `${what}: no byte outside the view decoded`);
      for (const s of back.tensors[0].states) {
        const arr = (s as { values: Float32Array }).values;
        assert.equal(arr.buffer.byteLength, arr.byteLength, `${what}: the result owns exactly its memory`);
      }
    }
  });

  it('$array type names come from an own-property allow-list: constructor, toString, __proto__, Int32Array rejected by name', async () => {
    const bytes = bitopt.serializeStateDict(await trainedDict(6));
    const { header, data } = split(bytes);
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'Int32Array', 'Array', 'ArrayBuffer', '']) {
      const edited = header.replace('"$array":"Uint8Array"', `"$array":${JSON.stringify(name)}`);
      assert.notEqual(edited, header);
      assert.throws(
        () => bitopt.deserializeStateDict(assemble({ header: edited, data })),
        new RegExp(escapeRe(`deserializeStateDict: header dict.tensors[0].states[0].codes: unknown array type ${JSON.stringify(name)} (allowed: Uint8Array, Float32Array, Float64Array)`)),
        name,
      );
    }
    const numeric = header.replace('"$array":"Uint8Array"', '"$array":7');
    assert.throws(() => bitopt.deserializeStateDict(assemble({ header: numeric, data })), /unknown array type 7/);
  });

  it('JSON header: forbidden keys, depth, canonical form and size are bounded', async () => {
    const bytes = bitopt.serializeStateDict(await trainedDict(7));
    const { header, data } = split(bytes);
    const withKey = (k: string) => header.replace('{"format"', `{${JSON.stringify(k)}:{"a":1},"format"`);
    for (const k of ['__proto__', 'constructor', 'prototype']) {
      assert.throws(() => bitopt.deserializeStateDict(assemble({ header: withKey(k), data })), new RegExp(`key "${k}" is not allowed`), k);
    }
    const nested = (n: number) => header.replace('{"format"', `{"deep":${'['.repeat(n)}${']'.repeat(n)},"format"`);
    assert.throws(() => bitopt.deserializeStateDict(assemble({ header: nested(40), data })), /header nested deeper than 32 levels/);
    const t0 = performance.now();
    assert.throws(() => bitopt.deserializeStateDict(assemble({ header: nested(200_000), data })), /header nested deeper than 32 levels/);
    assert.ok(performance.now() - t0 < 2000, 'deep nesting rejected quickly, without a stack overflow');
    assert.doesNotThrow(() => bitopt.deserializeStateDict(assemble({ header: nested(20), data })));
    for (const [what, text] of [
      ['whitespace', header.replace('{"format"', '{ "format"')],
      ['a duplicate key', header.replace('{"format"', '{"rule":"x","format"')],
      ['another number spelling', header.replace('"version":2', '"version":2.0')],
      ['an escape', header.replace('"format"', '"\\u0066ormat"')],
    ]) {
      assert.throws(() => bitopt.deserializeStateDict(assemble({ header: text, data })), /header is not in the canonical form serializeStateDict writes/, what);
    }
    // The header length is bounded by the file: a length past the end is refused before any read.
    const long = bytes.slice();
    new DataView(long.buffer).setUint32(12, 0xfffffff0, true);
    assert.throws(() => bitopt.deserializeStateDict(reseal(long)), /truncated: header of 4294967280 bytes does not fit/);
  });

  it('serialize writes only what reads back: Int32Array, subclasses, Buffer, non-finite numbers refused; null where allowed round-trips', async () => {
    const good = await trainedDict(8);
    const edit = (f: (d: any) => void) => {
      const d = structuredClone(good) as any;
      f(d);
      return d;
    };
    class F32 extends Float32Array {}
    const refused: [string, unknown, RegExp][] = [
      ['Int32Array', edit((d) => (d.tensors[0].states[0].codes = new Int32Array(4))), /dict\.tensors\[0\]\.states\[0\]\.codes: an Int32Array cannot be stored \(the format holds only Uint8Array, Float32Array, Float64Array\)/],
      ['BigInt64Array', edit((d) => (d.extra = new BigInt64Array(2))), /dict\.extra: a BigInt64Array cannot be stored/],
      ['DataView', edit((d) => (d.extra = new DataView(new ArrayBuffer(8)))), /dict\.extra: a DataView cannot be stored/],
      ['Float32Array subclass', edit((d) => (d.tensors[0].states[0].absmax = new F32(20))), /a F32 \(a subclass of Float32Array\) cannot be stored: it would read back as a plain Float32Array/],
      ['Buffer', edit((d) => (d.tensors[0].states[0].codes = Buffer.alloc(5000))), /a Buffer \(a subclass of Uint8Array\) cannot be stored/],
      ['null dict', null, /serializeStateDict: expected a state dict \(from optimizer\.stateDict\(\)\), got null/],
      ['null tensor', edit((d) => (d.tensors[0] = null)), /dict\.tensors\[0\]: expected an object, got null/],
      ['Infinity', edit((d) => (d.groups[0].options.eps = Infinity)), /options\.eps: Infinity cannot be stored/],
      ['bigint', edit((d) => (d.tensors[0].step = 3n)), /step: bigint 3 cannot be stored/],
      ['Date', edit((d) => (d.extra = new Date(0))), /dict\.extra: a Date cannot be stored/],
      ['sparse array', edit((d) => (d.groups[0].params = [, 1])), /params: element 0 is a hole/],
      ['__proto__ key', edit((d) => Object.defineProperty(d, '__proto__', { value: {}, enumerable: true })), /key "__proto__" is not allowed/],
      ['$array key', edit((d) => (d.groups[0].options.$array = 'Uint8Array')), /key "\$array" is reserved/],
    ];
    for (const [what, d, re] of refused) assert.throws(() => bitopt.serializeStateDict(d as StateDict), re, what);
    // Accepted values round-trip exactly, and re-encode to the same bytes.
    const accepted = [
      good,
      edit((d) => (d.tensors[0].clipHistory = null)),
      edit((d) => (d.extra = { list: [null, 'π', 'a\ud800b', true, 1e-300, 2 ** 53, []], empty: new Float64Array(0) })),
    ];
    for (const d of accepted) {
      const bytes = bitopt.serializeStateDict(d);
      const back = bitopt.deserializeStateDict(bytes);
      assert.deepEqual(back, d);
      assert.ok(sameBytes(bitopt.serializeStateDict(back), bytes));
    }
    // -0 is the one value written as another (0): numerically equal.
    assert.equal(Object.is(bitopt.deserializeStateDict(bitopt.serializeStateDict(edit((d) => (d.groups[0].options.weightDecay = -0)))).groups[0].options.weightDecay, 0), true);
  });

  it('property: mutated bytes (truncation, bit flips, header edits, CRC recomputed) throw a clear Error or re-encode to the same bytes, allocating at most the input size', async (t) => {
    const base = [bitopt.serializeStateDict(await trainedDict(9, [700, 30])), bitopt.serializeStateDict(await trainedDict(10, [64, 5]))];
    const headers = base.map((b) => JSON.parse(split(b).header));
    /** Every path in a header tree (into objects, arrays and array references). */
    const pathsOf = (v: unknown, path: (string | number)[] = [], out: (string | number)[][] = []) => {
      out.push(path);
      if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...path, i], out));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) pathsOf(x, [...path, k], out);
      return out;
    };
    const paths = headers.map((h) => pathsOf(h).filter((p) => p.length > 0));
    const refsOf = (h: unknown) => pathsOf(h).filter((p) => { const v = get(h, p); return v !== null && typeof v === 'object' && '$array' in (v as object); });
    const get = (v: unknown, p: (string | number)[]) => p.reduce((o: any, k) => o?.[k], v);
    const set = (v: any, p: (string | number)[], x: unknown) => {
      const parent = get(v, p.slice(0, -1));
      if (parent && typeof parent === 'object') parent[p[p.length - 1]] = x;
    };
    const value = fc.oneof(
      fc.constantFrom<unknown>(null, 0, -1, 1, 8, 0.5, 1e300, 2 ** 53, 'x', 'Uint8Array', 'constructor', true, [], {}, { $array: 'Float32Array', offset: 0, length: 1 }, { $array: 'toString', offset: 0, length: 0 }),
      fc.integer({ min: -16, max: 6000 }),
    );
    const edit = fc.oneof(
      // Truncation, with or without a re-sealed checksum.
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), seal: fc.boolean() }),
      // Bit flips anywhere, checksum re-sealed.
      fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }) }),
      // A header field set to another value; header length and checksum recomputed.
      fc.record({ kind: fc.constant('set' as const), path: fc.nat(), value }),
      // One array reference copied over another (repeated or overlapping ranges).
      fc.record({ kind: fc.constant('copyRef' as const), from: fc.nat(), to: fc.nat(), shift: fc.constantFrom(0, 0, 8, -8, 16) }),
      // A raw character of the header text replaced.
      fc.record({ kind: fc.constant('char' as const), at: fc.nat(), ch: fc.constantFrom(' ', '"', '{', '}', '[', ']', ',', ':', '0', '9', '-', 'e', '\\', 'é') }),
      // A data byte changed (content, not structure); checksum re-sealed.
      fc.record({ kind: fc.constant('data' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
    );
    const counts = { rejected: 0, accepted: 0 };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: base.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 3 }), (which, edits) => {
        let bytes: Uint8Array = base[which].slice();
        for (const e of edits) {
          if (e.kind === 'truncate') {
            bytes = bytes.slice(0, e.at % (bytes.length + 1));
            if (e.seal) reseal(bytes);
          } else if (e.kind === 'flip') {
            if (bytes.length === 0) continue;
            for (const b of e.bits) bytes[(b >> 3) % bytes.length] ^= 1 << (b & 7);
            reseal(bytes);
          } else if (e.kind === 'data') {
            if (bytes.length < 4) continue;
            bytes[e.at % bytes.length] = e.v;
            reseal(bytes);
          } else {
            let parts: Parts;
            try {
              parts = split(bytes);
            } catch {
              continue;
            }
            if (e.kind === 'char') {
              const s = parts.header;
              if (s.length === 0) continue;
              const i = e.at % s.length;
              parts.header = s.slice(0, i) + e.ch + s.slice(i + 1);
            } else {
              let h: any;
              try {
                h = JSON.parse(parts.header);
              } catch {
                continue;
              }
              if (e.kind === 'set') {
                const ps = paths[which];
                set(h, ps[e.path % ps.length], structuredClone(e.value));
              } else {
                const refs = refsOf(h);
                if (refs.length === 0) continue;
                const from = get(h, refs[e.from % refs.length]);
                set(h, refs[e.to % refs.length], { ...from, offset: from.offset + e.shift });
              }
              parts.header = JSON.stringify(h);
            }
            bytes = assemble(parts);
          }
        }
        let back: StateDict;
        try {
          back = bitopt.deserializeStateDict(bytes);
        } catch (err) {
          assert.ok(err instanceof Error && err.constructor === Error, `not a plain Error: ${String(err)}`);
          assert.match(err.message, /^deserializeStateDict: /);
          assert.ok(err.message.length < 500, 'a short message');
          counts.rejected++;
          return;
        }
        assert.ok(typedBytes(back) <= bytes.length, `allocated ${typedBytes(back)} bytes of arrays from ${bytes.length} bytes of input`);
        assert.ok(sameBytes(bitopt.serializeStateDict(back), bytes), 'a decoded dict re-encodes to the same bytes');
        counts.accepted++;
      }),
      { numRuns: 600 * RUNS, includeErrorInReport: true },
    );
    t.diagnostic(`inputs tried: ${counts.rejected + counts.accepted}: ${counts.rejected} rejected with a clear error, ${counts.accepted} decoded and re-encoded to the same bytes`);
    assert.ok(counts.rejected > 0 && counts.accepted > 0, 'both outcomes are exercised');
  });
});
