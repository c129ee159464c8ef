/**
 * Invariant 1 (docs/reliability.md): a step that throws leaves every parameter, state and step
 * count exactly as before it. Each case builds an optimizer that has state, makes the next step
 * fail in a different way (out of memory on a later tensor, a sparse gradient array, a resized
 * or detached buffer, aliased parameters or gradients), and compares the whole serialized state
 * dict and every parameter's bytes before and after the throw; then checks that a good step
 * still works.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Adam, Adam8bit, createReferenceKernel, LAMB8bit, serializeStateDict, type Optimizer } from '../src/index.js';
import { allocFloat32, createWasmKernel, wasmKernelsSupported } from '../src/kernels/cpu/index.js';
import { KernelMemoryError, wasmRuntime } from '../src/kernels/cpu/wasm-runtime.js';
import { rng } from './helpers/float64-rules.js';

const wasm = wasmKernelsSupported();

/** A resizable ArrayBuffer (ES2024; the project's lib is older). */
type Resizable = ArrayBuffer & { resize(bytes: number): void };
const resizable = (bytes: number, max: number) => new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable)(bytes, { maxByteLength: max });

function filled(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() - 0.5) * scale;
  return a;
}

/** Everything a failed step must not change. */
function snapshot(opt: Optimizer): { dict: Uint8Array; params: Uint8Array[]; steps: number[] } {
  return {
    dict: serializeStateDict(opt.stateDict()),
    params: opt.params.map((p) => (p.length === 0 ? new Uint8Array(0) : new Uint8Array(p.slice().buffer))),
    steps: opt.params.map((_, i) => opt.stepCount(i)),
  };
}

/** Runs `fail` (which must throw matching `message`) and checks that nothing changed. */
async function assertUnchanged(opt: Optimizer, fail: () => Promise<unknown> | unknown, message: RegExp): Promise<void> {
  const before = snapshot(opt);
  await assert.rejects(async () => fail(), message);
  assert.deepEqual(snapshot(opt), before);
}

const kernels: [string, () => ReturnType<typeof createReferenceKernel>][] = [['reference', () => createReferenceKernel()]];
if (wasm) kernels.push(['wasm', () => createWasmKernel({ threads: 2, minParallelSize: 1024, precision: 'exact' })]);

for (const [kname, makeKernel] of kernels) {
  describe(`invariant 1: a step that throws changes nothing (${kname} kernel)`, () => {
    /** An 8-bit optimizer over [8-bit tensor, float32-state tensor, 8-bit tensor] that has taken one step. */
    async function trained(Cls: typeof Adam8bit | typeof LAMB8bit = Adam8bit, params = [filled(5000, 1), filled(300, 2), filled(9000, 3)]) {
      const opt = new Cls(params, { lr: 1e-2 });
      opt.setKernel(makeKernel());
      await opt.step(params.map((p, i) => filled(p.length, 10 + i, 0.1)));
      const lengths = params.map((p) => p.length);
      return { opt, params, grads: () => lengths.map((n, i) => filled(n, 20 + i, 0.1)) };
    }

    it('a sparse gradient array (a hole is not null) is refused, naming the fix', async () => {
      const { opt, grads } = await trained();
      const g = grads();
      const sparse: Float32Array[] = [];
      sparse[0] = g[0];
      sparse[2] = g[2];
      await assertUnchanged(opt, () => opt.step(sparse), /gradient 1 is missing \(a hole in a sparse array\); pass null to skip/);
      assert.throws(() => opt.stepSync(sparse), /gradient 1 is missing/);
      await opt.step([g[0], null, g[2]]); // null still skips
      assert.deepEqual([opt.stepCount(0), opt.stepCount(1), opt.stepCount(2)], [2, 1, 2]);
    });

    it('a parameter whose resizable buffer grew or shrank (length-tracking and fixed views) is refused', async () => {
      const n = 300; // float32 state
      const growable = resizable(4 * n, 16 * n);
      const tracking = new Float32Array(growable); // length follows the buffer
      tracking.set(filled(n, 4));
      const shrinkable = resizable(4 * 5000, 4 * 5000);
      const fixed = new Float32Array(shrinkable, 0, 5000);
      fixed.set(filled(5000, 5));
      const { opt, grads } = await trained(Adam8bit, [fixed, tracking, filled(9000, 6)]);
      growable.resize(8 * n);
      await assertUnchanged(opt, () => opt.step(grads().map((g, i) => (i === 1 ? filled(n, 7) : g))), /parameter 1 has 600 elements but had 300 \(its buffer was resized or detached\)/);
      growable.resize(4 * n);
      shrinkable.resize(4 * 100); // the fixed view is now out of bounds: length 0
      await assertUnchanged(opt, () => opt.step(grads()), /parameter 0 has 0 elements but had 5000/);
      shrinkable.resize(4 * 5000);
      await opt.step(grads()); // back in shape: steps again
      assert.equal(opt.stepCount(0), 2);
    });

    it('a detached parameter or gradient buffer is refused', async () => {
      const { opt, params, grads } = await trained();
      const g = grads();
      structuredClone(g[2].buffer, { transfer: [g[2].buffer] });
      await assertUnchanged(opt, () => opt.step(g), /gradient 2 has 0 elements but its parameter has 9000/);
      const last = params[2];
      const copy = last.slice();
      structuredClone(last.buffer, { transfer: [last.buffer] });
      const before = serializeStateDict(opt.stateDict());
      await assert.rejects(opt.step(grads()), /parameter 2 has 0 elements but had 9000/);
      assert.deepEqual(serializeStateDict(opt.stateDict()), before);
      opt.replaceParam(2, copy); // the documented way back
      await opt.step(grads());
    });

    it('aliased parameters are refused: two views of one range, overlapping subarrays (constructor, addParam, replaceParam)', async () => {
      const buf = new Float32Array(10000);
      assert.throws(() => new Adam8bit([buf, new Float32Array(buf.buffer)]), /parameter 0 and parameter 1 share memory/);
      assert.throws(() => new Adam8bit([buf.subarray(0, 6000), buf.subarray(5000)]), /parameter 0 and parameter 1 share memory/);
      // Disjoint views of one buffer are fine, and equal separate arrays.
      const a = buf.subarray(0, 5000);
      const b = buf.subarray(5000);
      a.set(filled(5000, 8));
      b.set(filled(5000, 9));
      const twins = [a.slice(), b.slice()];
      const opt = new Adam8bit([a, b]);
      opt.setKernel(makeKernel());
      const ref = new Adam8bit(twins);
      ref.setKernel(createReferenceKernel());
      const g = [filled(5000, 30, 0.1), filled(5000, 31, 0.1)];
      await opt.step(g);
      await ref.step(g);
      assert.deepEqual([a.slice(), b.slice()], twins);
      const before = snapshot(opt);
      assert.throws(() => opt.addParam(buf.subarray(4000, 4100)), /parameter 0 and parameter 2 share memory/);
      assert.throws(() => opt.replaceParam(1, buf.subarray(100, 5100)), /parameter 0 and parameter 1 share memory/);
      assert.deepEqual(snapshot(opt), before);
    });

    it('a gradient that shares memory with a parameter is refused; one gradient for two parameters is fine', async () => {
      const { opt, params, grads } = await trained();
      const g = grads();
      await assertUnchanged(opt, () => opt.step([params[0], g[1], g[2]]), /gradient 0 shares memory with parameter 0/);
      const other = new Float32Array(params[2].buffer, 0, 5000);
      await assertUnchanged(opt, () => opt.step([other, g[1], g[2]]), /gradient 0 shares memory with parameter 2/);
      const shared = filled(5000, 40, 0.1);
      const two = new Adam([filled(5000, 41), filled(5000, 42)]);
      two.setKernel(makeKernel());
      await two.step([shared, shared]);
      assert.equal(two.stepCount(1), 1);
    });

    it('a queued step whose parameter is resized before it runs rejects and changes nothing, after the step before it', async () => {
      const n = 300;
      const growable = resizable(4 * n, 8 * n);
      const p = new Float32Array(growable);
      p.set(filled(n, 50));
      const opt = new Adam([p, filled(5000, 51)]);
      opt.setKernel(makeKernel());
      const first = opt.step([filled(n, 52), filled(5000, 53)]);
      const second = opt.step([filled(n, 54), filled(5000, 55)]);
      // The first step ran at its call (a synchronous kernel); the second is queued behind it.
      growable.resize(8 * n);
      await first;
      const other = opt.params[1].slice(); // the state dict cannot be read while `second` is pending
      await assert.rejects(second, /parameter 0 has 600 elements/);
      assert.deepEqual(opt.params[1], other);
      assert.deepEqual([opt.stepCount(0), opt.stepCount(1)], [1, 1]);
    });
  });
}

describe('invariant 1 on the wasm kernel: out of memory and kernel-memory aliasing', { skip: !wasm && 'no wasm kernel' }, () => {
  it('out of memory on a later tensor: the earlier tensors are not updated, no step counted', async () => {
    const rt = wasmRuntime();
    const small = filled(5000, 60);
    const big = filled(2 << 20, 61);
    const opt = new LAMB8bit([small, big]);
    opt.setKernel(createWasmKernel({ threads: 1 }));
    await opt.step([filled(5000, 62, 0.1), null]); // the first tensor has state; the big one has none
    const saved = rt.limitBytes;
    rt.limitBytes = rt.extentBytes + (1 << 20); // room for small things, not for 4 MiB of new state
    try {
      await assertUnchanged(opt, () => opt.step([filled(5000, 63, 0.1), filled(2 << 20, 64, 0.1)]), /out of memory/);
      const before = snapshot(opt);
      assert.throws(() => opt.stepSync([filled(5000, 63, 0.1), filled(2 << 20, 64, 0.1)]), (e: Error) => e instanceof KernelMemoryError);
      assert.deepEqual(snapshot(opt), before);
    } finally {
      rt.limitBytes = saved;
    }
    await opt.step([filled(5000, 63, 0.1), filled(2 << 20, 64, 0.1)]);
    assert.deepEqual([opt.stepCount(0), opt.stepCount(1)], [2, 1]);
  });

  it('two views of one kernel-memory region made before and after the memory grew are seen as aliased', async () => {
    const rt = wasmRuntime();
    const a = allocFloat32(8192);
    const grow = allocFloat32(16 << 20); // the shared memory grows: a new buffer object from now on
    const b = new Float32Array(rt.memory.buffer, a.byteOffset + 4096, 4096);
    assert.notEqual(a.buffer, b.buffer);
    const opt = new Adam8bit([a, b]); // the constructor cannot tell (no kernel yet) …
    opt.setKernel(createWasmKernel({ threads: 1 }));
    await assertUnchanged(opt, () => opt.step([filled(8192, 70), filled(4096, 71)]), /parameter 0 and parameter 1 share memory/); // … the step can
    assert.equal(grow.length, 16 << 20);
  });
});

describe('property: hostile gradient lists either step exactly like the reference or change nothing', () => {
  it('random lists of holes, nulls, wrong lengths, wrong types, aliases, detached and good gradients', async () => {
    const lengths = [5000, 300, 9000];
    const counts = { stepped: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            { arbitrary: fc.constantFrom('good', 'null', 'shared'), weight: 6 },
            { arbitrary: fc.constantFrom('hole', 'short', 'long', 'float64', 'number', 'param', 'otherParam', 'detached'), weight: 1 },
          ),
          { minLength: 3, maxLength: 3 },
        ),
        fc.boolean(),
        fc.integer({ min: 1, max: 1000 }),
        async (kinds, extra, seed) => {
          const params = lengths.map((n, i) => filled(n, seed + i));
          const twins = params.map((p) => p.slice());
          const opt = new Adam8bit(params, { lr: 1e-2 });
          opt.setKernel(wasm ? createWasmKernel({ threads: 2, minParallelSize: 1024, precision: 'exact' }) : createReferenceKernel());
          const ref = new Adam8bit(twins, { lr: 1e-2 });
          ref.setKernel(createReferenceKernel());
          const warm = lengths.map((n, i) => filled(n, seed + 10 + i, 0.1));
          await opt.step(warm);
          await ref.step(warm);
          const sharedGrad = filled(5000, seed + 20, 0.1);
          const grads: unknown[] = [];
          kinds.forEach((k, i) => {
            const n = lengths[i];
            if (k === 'hole') return;
            grads[i] =
              k === 'good' ? filled(n, seed + 30 + i, 0.1)
              : k === 'null' ? null
              : k === 'short' ? new Float32Array(n - 1)
              : k === 'long' ? new Float32Array(n + 1)
              : k === 'float64' ? new Float64Array(n)
              : k === 'number' ? 0.5
              : k === 'param' ? params[i]
              : k === 'otherParam' ? new Float32Array(params[(i + 1) % 3].buffer, 0, Math.min(n, lengths[(i + 1) % 3]))
              : k === 'detached' ? (() => { const g = new Float32Array(n); structuredClone(g.buffer, { transfer: [g.buffer] }); return g; })()
              : n === 5000 ? sharedGrad : filled(n, seed + 40 + i, 0.1);
          });
          if (extra) grads.length = 3; // a trailing hole stays a hole
          const before = snapshot(opt);
          try {
            await opt.step(grads as Float32Array[]);
          } catch (e) {
            assert.ok(e instanceof Error && /^Adam8bit\.step: /.test(e.message), String(e));
            assert.deepEqual(snapshot(opt), before);
            counts.refused++;
            return;
          }
          // Accepted: exactly the reference's step on the same gradients.
          await ref.step(grads as Float32Array[]);
          assert.deepEqual(serializeStateDict(opt.stateDict()), serializeStateDict(ref.stateDict()));
          assert.deepEqual(params.map((p) => p.slice()), twins.map((p) => p.slice()));
          counts.stepped++;
        },
      ),
      { numRuns: Number(process.env.RELIABILITY_RUNS ?? 1) * 60 },
    );
    console.log(`# hostile gradient lists: ${counts.stepped} stepped like the reference, ${counts.refused} refused with nothing changed`);
  });
});
