/**
 * Invariant 2 (docs/reliability.md): memory is never reused while anything still references it,
 * and the WebAssembly kernel's memory is bounded by the optimizer state plus a constant.
 *
 * - After an out-of-memory error, nothing the kernel keeps points at released memory: arrays
 *   allocated afterwards are never written by later steps of other optimizers (issue 13: the
 *   staging area was released before the failing allocation and stayed referenced).
 * - `allocFloat32` memory lives while any subarray of it (or a parameter viewing it) lives, and
 *   is released once nothing references it.
 * - Plain Float32Array parameters are staged in bounded windows (issue 15): kernel memory in use
 *   after steps of a 4M-element parameter is the state plus a stated constant, and the windowed
 *   path is bit-identical to the in-place path and to the reference kernel, on any thread count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam8bit, AdEMAMix, createReferenceKernel, LAMB8bit, Lion8bit, serializeStateDict, type Optimizer } from '../src/index.js';
import { allocFloat32, createWasmKernel, wasmKernelsSupported } from '../src/kernels/cpu/index.js';
import { KernelMemoryError, wasmRuntime } from '../src/kernels/cpu/wasm-runtime.js';
import { rng } from './helpers/float64-rules.js';
import { gcFunction, settleKernelMemory } from './helpers/gc.js';

const skip = !wasmKernelsSupported() && 'WebAssembly SIMD + shared memory unavailable';
const MiB = 1 << 20;


/** Collects until `ref` is cleared and the finalizers have had their turns. */
async function collect(ref: WeakRef<object>): Promise<void> {
  const gc = gcFunction();
  for (let i = 0; i < 20; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(ref.deref(), undefined, 'the dropped array was garbage-collected (otherwise this test proves nothing)');
}


function filled(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() - 0.5) * scale;
  return a;
}

const overlaps = (a: ArrayBufferView, b: ArrayBufferView) => a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;

function bytesOf(opt: Optimizer): Uint8Array {
  return serializeStateDict(opt.stateDict());
}

describe('invariant 2: kernel memory is never reused while referenced', { skip }, () => {
  it('after an out-of-memory error, arrays allocated later are never written by other optimizers’ staged steps (issue 13)', async () => {
    const rt = wasmRuntime();
    const kernel = createWasmKernel({ threads: 1, precision: 'exact' });
    // A: plain arrays (staged) and a trust-ratio rule, so it uses staging, scratch and norm areas.
    const pA = filled(5000, 1);
    const twinA = pA.slice();
    const A = new LAMB8bit([pA], { lr: 1e-2 });
    A.setKernel(kernel);
    const refA = new LAMB8bit([twinA], { lr: 1e-2 });
    refA.setKernel(createReferenceKernel());
    const gA = filled(5000, 2, 0.1);
    await A.step([gA]);
    await refA.step([gA]);

    // B's states fit under the budget, but the larger norm area it needs does not: the step
    // fails in the middle of reserving the kernel's own areas.
    const nB = 4 * MiB;
    const pB = filled(nB, 3);
    const B = new LAMB8bit([pB], { lr: 1e-2 });
    B.setKernel(kernel);
    const pBBefore = pB.slice();
    const dictBefore = bytesOf(B);
    const saved = rt.limitBytes;
    rt.limitBytes = rt.extentBytes + 2 * (nB + (nB / 256) * 4) + 4096;
    try {
      await assert.rejects(B.step([filled(nB, 4, 0.1)]), (e: Error) => e instanceof KernelMemoryError && /out of memory/.test(e.message));
    } finally {
      rt.limitBytes = saved;
    }
    assert.deepEqual(bytesOf(B), dictBefore, 'B: state unchanged by the failed step');
    assert.equal(B.stepCount(0), 0);
    assert.ok(pB.every((v, i) => Object.is(v, pBBefore[i])), 'B: parameters unchanged');

    // Whatever was freed and re-allocated now belongs to these arrays alone.
    const sentinels = [16, 64, 80, 128, 1000, 4096, 5000, 20000].map((n) => allocFloat32(n).fill(7.25));
    for (let s = 0; s < 4; s++) {
      const g = filled(5000, 10 + s, 0.1);
      await A.step([g]);
      await refA.step([g]);
    }
    await B.step([filled(nB, 5, 0.1)]); // B works once memory is there again
    for (const a of sentinels) assert.ok(a.every((v) => v === 7.25), `an array of ${a.length} allocated after the OOM was overwritten`);
    assert.deepEqual(pA, twinA, 'A still equals the reference kernel bit for bit');
    assert.deepEqual(bytesOf(A), bytesOf(refA));
  });

  it('an out-of-memory error is a KernelMemoryError naming the limit, and the allocator is unchanged by it', () => {
    const rt = wasmRuntime();
    const before = rt.bytesInUse;
    assert.throws(() => allocFloat32(2 ** 30), (e: Error) => e instanceof KernelMemoryError && /the limit is 4294967296/.test(e.message));
    assert.equal(rt.bytesInUse, before);
    const a = allocFloat32(1000);
    assert.equal(rt.bytesInUse, before + 4000 + 32); // 64-byte aligned
    assert.ok(a.every((v) => v === 0));
  });

  it('allocFloat32 memory stays allocated while a subarray of it is a parameter (the base array collected)', async () => {
    const kernel = createWasmKernel({ threads: 1, precision: 'exact' });
    let baseRef!: WeakRef<Float32Array>;
    const sub = (() => {
      const base = allocFloat32(8192);
      baseRef = new WeakRef(base);
      return base.subarray(0, 8192); // the whole region, through a view
    })();
    sub.set(filled(8192, 20));
    const twin = sub.slice();
    const opt = new Adam8bit([sub], { lr: 1e-2 });
    opt.setKernel(kernel);
    const ref = new Adam8bit([twin], { lr: 1e-2 });
    ref.setKernel(createReferenceKernel());
    await collect(baseRef);
    // New allocations must not land on the parameter.
    const others = Array.from({ length: 6 }, () => allocFloat32(8192).fill(-3));
    for (const o of others) assert.ok(!overlaps(o, sub), 'a new allocation overlaps a live parameter');
    for (let s = 0; s < 3; s++) {
      const g = filled(8192, 30 + s, 0.1);
      await opt.step([g]);
      await ref.step([g]);
    }
    assert.deepEqual(sub, twin);
    for (const o of others) assert.ok(o.every((v) => v === -3));
  });

  it('a view made over the memory buffer is kept alive once stepped; one over released memory is refused, naming the fix', async () => {
    const kernel = createWasmKernel({ threads: 1, precision: 'exact' });
    let baseRef!: WeakRef<Float32Array>;
    const view = (() => {
      const base = allocFloat32(4096);
      baseRef = new WeakRef(base);
      return new Float32Array(base.buffer, base.byteOffset, 4096); // not through subarray
    })();
    const opt = new Adam8bit([view]);
    opt.setKernel(kernel);
    await opt.step([filled(4096, 40)]); // the step ties the region to the parameter
    await collect(baseRef);
    assert.ok(wasmRuntime().retain(new Float32Array(view.buffer, view.byteOffset, 16)), 'the parameter’s region is still allocated');
    const others = Array.from({ length: 4 }, () => allocFloat32(4096));
    for (const o of others) assert.ok(!overlaps(o, view));

    // A raw view whose region is released before any step: refused, nothing changes.
    let deadRef!: WeakRef<Float32Array>;
    const dead = (() => {
      const base = allocFloat32(50000);
      deadRef = new WeakRef(base);
      return new Float32Array(base.buffer, base.byteOffset, 50000);
    })();
    await collect(deadRef);
    const opt2 = new Adam8bit([dead]);
    opt2.setKernel(kernel);
    const before = bytesOf(opt2);
    await assert.rejects(opt2.step([filled(50000, 41)]), /not allocated .*keep that array alive, or make views of it with subarray\(\)/);
    assert.deepEqual(bytesOf(opt2), before);
    assert.equal(opt2.stepCount(0), 0);
  });

  it('allocFloat32 memory is released once neither the array nor its subarrays are referenced', async () => {
    const rt = wasmRuntime();
    const before = await settleKernelMemory();
    let ref!: WeakRef<Float32Array>;
    let sub: Float32Array | null = (() => {
      const base = allocFloat32(MiB);
      return base.subarray(10, 20);
    })();
    ref = new WeakRef(sub);
    // Asks through a fresh view (dropped right away) whether the region is still allocated.
    const { buffer, byteOffset } = sub;
    const allocated = () => rt.retain(new Float32Array(buffer, byteOffset - 40, 16));
    await collect(new WeakRef({}));
    assert.ok(allocated(), 'kept while the subarray lives');
    sub = null;
    await collect(ref);
    await settleKernelMemory();
    assert.equal(allocated(), false, 'the region is released');
    assert.ok(rt.bytesInUse <= before, 'released');
  });
});

describe('bounded staging: plain arrays cost the state plus a constant of kernel memory (issue 15)', { skip }, () => {
  /** The stated constant: two staging windows (2 MiB), scratch, lookup tables, norms, descriptor. */
  const CONSTANT = 4 * MiB;

  it(`8-bit Adam, one 4M-element plain parameter: kernel memory grows by the state + at most ${CONSTANT / MiB} MiB`, async () => {
    const rt = wasmRuntime();
    const before = await settleKernelMemory();
    const n = 4 * MiB;
    const p = filled(n, 50);
    const opt = new Adam8bit([p]);
    opt.setKernel(createWasmKernel({ threads: 2, minParallelSize: 1024 }));
    for (let s = 0; s < 3; s++) await opt.step([filled(n, 51 + s, 0.1)]);
    const grown = rt.bytesInUse - before;
    const state = opt.stateBytes();
    assert.ok(grown <= state + CONSTANT, `kernel memory grew by ${grown} bytes; state ${state} + constant ${CONSTANT}`);
  });

  for (const [label, Cls, options] of [
    ['Adam8bit', Adam8bit, {}],
    ['LAMB8bit (norm pass)', LAMB8bit, {}],
    ['Lion8bit, block 4096', Lion8bit, { blockSize: 4096 }],
    ['AdEMAMix (float32 states)', AdEMAMix, {}],
  ] as const) {
    it(`${label}: windowed staging = in place = reference, bit for bit, on 1 and 3 threads and both precisions`, async () => {
      const n = 3 * 131072 + 4097; // four windows, the last partial, a partial block
      const init = filled(n, 60);
      const grads = [1, 2, 3].map((s) => {
        const g = filled(n, 60 + s, 0.1);
        g[17] = NaN;
        g[n - 1] = Infinity;
        return g;
      });
      const run = async (kernel: Parameters<Optimizer['setKernel']>[0], where: 'plain' | 'kernel' | 'param only' | 'grad only') => {
        const p = where === 'kernel' || where === 'param only' ? allocFloat32(n) : new Float32Array(n);
        p.set(init);
        const opt = new (Cls as unknown as new (p: Float32Array[], o: object) => Optimizer)([p], { lr: 1e-2, ...options });
        opt.setKernel(kernel);
        for (const g of grads) {
          const gg = where === 'kernel' || where === 'grad only' ? allocFloat32(n) : new Float32Array(n);
          gg.set(g);
          await opt.step([gg]);
        }
        return { p: new Uint8Array(p.slice().buffer), dict: bytesOf(opt) };
      };
      const expected = await run(createReferenceKernel(), 'plain');
      for (const precision of ['exact', 'float32'] as const) {
        for (const threads of [1, 3]) {
          const kernel = createWasmKernel({ threads, precision, minParallelSize: 1024 });
          await kernel.ready();
          const inPlace = await run(kernel, 'kernel');
          for (const where of ['plain', 'param only', 'grad only'] as const) {
            const got = await run(kernel, where);
            assert.deepEqual(got.p, inPlace.p, `${precision}, ${threads} threads, ${where}: parameters`);
            assert.deepEqual(got.dict, inPlace.dict, `${precision}, ${threads} threads, ${where}: state`);
          }
          if (precision === 'exact' && !label.startsWith('LAMB')) {
            assert.deepEqual(inPlace.p, expected.p, `exact, ${threads} threads = reference`);
            assert.deepEqual(inPlace.dict, expected.dict);
          }
        }
      }
    });
  }
});
