/**
 * Property-based tests (fast-check): quantization and every optimizer on edge sizes (0, 1,
 * blockSize±1, primes) and edge values (huge, tiny, denormal, zero blocks, mixed signs,
 * NaN/±Inf gradients), against the brute-force and unfused references.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as bitopt from '../src/index.js';
import type { Optimizer } from '../src/index.js';
import { EIGHT_BIT_CLASSES, REF_STATES, type RefHyper } from './helpers/float64-rules.js';
import { assertNearestCodes } from './helpers/quant-checks.js';
import { initUnfused, unfusedStep } from './helpers/unfused8bit.js';

const BLOCK_SIZES = [64, 128, 256, 512, 1024, 2048, 4096];
const edgeLength = (bs: number) => fc.constantFrom(0, 1, 2, bs - 1, bs, bs + 1, 2 * bs + 1, 97, 331, 1009);
/** Values spanning huge, ordinary, tiny and denormal magnitudes of both signs, and exact zeros. */
const edgeValue = fc.oneof(
  fc.constant(0),
  fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-1e30), max: Math.fround(1e30) }),
  fc.double({ min: -1, max: 1, noNaN: true }).map((x) => x * 1e-38), // denormal range
  fc.double({ min: -10, max: 10, noNaN: true }),
);

describe('property: block-wise quantization', () => {
  it('absmax per block and nearest codes, for edge sizes and values', () => {
    const signed = bitopt.createDynamicMap(true);
    const unsigned = bitopt.createDynamicMap(false);
    fc.assert(
      fc.property(
        fc.constantFrom(...BLOCK_SIZES).chain((bs) => fc.tuple(fc.constant(bs), edgeLength(bs).chain((n) => fc.array(edgeValue, { minLength: n, maxLength: n })))),
        fc.boolean(),
        ([blockSize, values], useSigned) => {
          const x = Float32Array.from(values, (v) => (useSigned ? v : Math.abs(v)));
          const map = useSigned ? signed : unsigned;
          const { codes, absmax } = bitopt.quantizeBlockwise(x, { map, blockSize });
          assertNearestCodes(x, codes, absmax, map, blockSize, 'x');
          const y = bitopt.dequantizeBlockwise(codes, absmax, { map, blockSize });
          assert.ok(y.every(Number.isFinite), 'no NaN or infinity after a round trip');
        },
      ),
      { numRuns: 150 },
    );
  });
});

type Ctor = new (params: Float32Array[], options?: Record<string, unknown>) => Optimizer;
const CLASSES = EIGHT_BIT_CLASSES;

describe('property: every 8-bit optimizer on edge inputs', () => {
  for (const [rule, [name, options]] of Object.entries(CLASSES)) {
    it(`${name} matches the unfused reference, keeps non-finite elements, never produces NaN`, async () => {
      const gradValue = fc.oneof(
        { weight: 8, arbitrary: fc.double({ min: -100, max: 100, noNaN: true }) },
        { weight: 1, arbitrary: fc.constantFrom(0, NaN, Infinity, -Infinity, 1e-40, -1e-40, 1e12, -1e12) },
      );
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(64, 256).chain((bs) => fc.tuple(fc.constant(bs), edgeLength(bs))),
          fc.integer({ min: 1, max: 2 ** 31 - 1 }),
          fc.array(gradValue, { minLength: 64, maxLength: 64 }),
          async ([blockSize, n], seed, pool) => {
            const p = Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i));
            const pRef = p.slice();
            const h = { ...defaultsOf(rule), ...options } as unknown as RefHyper;
            const opt = new (bitopt as unknown as Record<string, Ctor>)[name]([p], { ...options, blockSize, min8bitSize: 0 });
            const ref = initUnfused(rule, n, blockSize);
            for (let t = 1; t <= 3; t++) {
              const g = Float32Array.from({ length: n }, (_, i) => pool[(i * 7 + t * 13 + seed) % pool.length]);
              const before = p.slice();
              await opt.step([g]);
              unfusedStep(rule, h, ref, pRef, g, blockSize);
              for (let i = 0; i < n; i++) {
                if (!Number.isFinite(g[i])) assert.equal(p[i], before[i], `element ${i} with gradient ${g[i]} must not move`);
                assert.ok(!Number.isNaN(p[i]), `parameter ${i} is NaN`);
              }
              opt.stateDict().tensors[0].states.forEach((st, k) => {
                if (st.format !== 'blockwise8') return assert.fail('expected 8-bit states');
                assert.ok(st.absmax.every(Number.isFinite), 'absmax finite');
                for (let i = 0; i < n; i++) assert.ok(Math.abs(st.codes[i] - ref.codes[k][i]) <= 1, `state ${k} code ${i}`);
              });
            }
            for (let i = 0; i < n; i++) assert.ok(Math.abs(p[i] - pRef[i]) <= 1e-4 * (1 + Math.abs(pRef[i])), `param ${i}: ${p[i]} vs ${pRef[i]}`);
          },
        ),
        { numRuns: 25 },
      );
      assert.equal(REF_STATES[rule].length, bitopt.RULES[rule].states.length);
    });
  }
});

/** The rule's defaults as the float64 reference's hyperparameters. */
function defaultsOf(rule: string): Record<string, number | number[]> {
  const d = bitopt.RULES[rule].defaults as Record<string, number | number[]>;
  return { ...d, betas: d.betas as number[] };
}

describe('overflowing states', () => {
  it('a gradient whose square overflows float32 saturates the 8-bit state instead of poisoning it', async () => {
    const p = new Float32Array(256).fill(1);
    const opt = new bitopt.Adam8bit([p], { min8bitSize: 0 });
    const g = new Float32Array(256).fill(0.5);
    g[3] = 1e22; // (1 - b2)·g² = 1e41 > float32 max
    await opt.step([g]);
    await opt.step([new Float32Array(256).fill(0.5)]);
    const [m, v] = opt.stateDict().tensors[0].states;
    assert.ok(m.format === 'blockwise8' && v.format === 'blockwise8');
    assert.ok(Number.isFinite(v.absmax[0]) && v.absmax[0] > 1e38, `v absmax ${v.absmax[0]}`);
    assert.ok(p.every(Number.isFinite), 'parameters stay finite');
  });
});

/**
 * Issue 13, invariants 1 and 6 at the option entries: hostile option objects through the
 * constructor, setOptions (with hostile group indices) and overrideConfig, interleaved with
 * steps. A call either throws a plain Error and leaves the optimizer's checkpoint and parameters
 * exactly as before, or is accepted and the next step from finite inputs gives finite parameters.
 */
describe('property: hostile options (constructors, setOptions, overrideConfig)', () => {
  const RUNS = Number(process.env.RELIABILITY_RUNS ?? 1);
  const CLASSES = [bitopt.Adam8bit, bitopt.AdamW, bitopt.RMSprop8bit, bitopt.Lion8bit, bitopt.SGD8bit, bitopt.LAMB8bit, bitopt.AdEMAMix8bit, bitopt.Adagrad8bit];
  const NAMES = ['lr', 'betas', 'eps', 'weightDecay', 'alpha', 'momentum', 'dampening', 'nesterov', 'optimBits', 'blockSize', 'min8bitSize', 'percentileClipping', 'maxUnorm', 'alpha3', 't_alpha', 'constructor', 'toString', '__proto__', 'valueOf', 'lrr'];
  const VALUES: unknown[] = [0, -0, 1, -1, 0.5, 0.999, 1e-8, 1e308, -1e308, 1e-320, NaN, Infinity, -Infinity, 2 ** 53, 8, 32, 4, 256, 100, 'x', '0.1', null, undefined, true, [], [0.9], [0.9, 0.999], [0.9, 0.999, 0.9999], [NaN, 0.9], [1, 1], {}, new Map()];
  const option = fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...VALUES));
  const optionObject = fc.oneof(
    // Own properties (a '__proto__' key too, as JSON.parse makes it), values kept as they are (NaN, Map, undefined).
    { weight: 8, arbitrary: fc.array(option, { maxLength: 3 }).map((kv) => kv.reduce((o, [k, v]) => Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true }), {} as object)) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 3, 'lr', [], new Map([['lr', 1]]), Object.create({ lr: 1 })) },
  );
  const call = fc.oneof(
    fc.record({ kind: fc.constant('set'), options: optionObject, index: fc.constantFrom<unknown>(undefined, 0, 1, '0', -1, 0.5, NaN) }),
    fc.record({ kind: fc.constant('override'), options: optionObject, which: fc.constantFrom(0, 1) }),
    fc.record({ kind: fc.constant('step') }),
  );
  const view = (opt: Optimizer, ps: Float32Array[]) => JSON.stringify({ d: opt.stateDict(), p: ps.map((p) => [...p]) }, (_, v) => (ArrayBuffer.isView(v) ? [...(v as Float32Array)] : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));

  it('every call throws and changes nothing, or keeps a finite step finite', async () => {
    const counts = { built: 0, refusedCtor: 0, accepted: 0, refused: 0, steps: 0 };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...CLASSES), optionObject, fc.array(call, { minLength: 1, maxLength: 6 }), async (cls, ctorOptions, calls) => {
        const ps = [new Float32Array(300).map((_, i) => Math.sin(i) * 0.1), new Float32Array(5000).map((_, i) => Math.cos(i) * 0.1)];
        const grads = ps.map((p) => p.map((_, i) => Math.sin(i * 1.7) * 0.01));
        let opt: Optimizer;
        try {
          opt = new (cls as unknown as new (p: Float32Array[], o: unknown) => Optimizer)(ps, ctorOptions);
        } catch (e) {
          assert.ok(e instanceof Error && !(e instanceof TypeError), `constructor: ${String(e)}`);
          counts.refusedCtor++;
          return;
        }
        counts.built++;
        for (const c of calls) {
          if (c.kind === 'step') {
            await opt.step(grads);
            for (const p of ps) assert.ok(p.every(Number.isFinite), `${cls.name} ${JSON.stringify(ctorOptions)}: a finite step gave a non-finite parameter`);
            counts.steps++;
            continue;
          }
          const before = view(opt, ps);
          try {
            if (c.kind === 'set') opt.setOptions(c.options as object, c.index as number);
            else opt.overrideConfig(ps[c.which as number], c.options as object);
            counts.accepted++;
          } catch (e) {
            assert.ok(e instanceof Error && !(e instanceof TypeError), `${c.kind}: ${String(e)}`);
            assert.equal(view(opt, ps), before, `${c.kind} threw (${(e as Error).message}) but changed the optimizer`);
            counts.refused++;
          }
        }
        await opt.step(grads);
        for (const p of ps) assert.ok(p.every(Number.isFinite), `${cls.name}: a finite step gave a non-finite parameter`);
        counts.steps++;
      }),
      { numRuns: 150 * RUNS, seed: 1313 },
    );
    console.log(`# hostile options: ${counts.built} optimizers built, ${counts.refusedCtor} constructors refused; ${counts.accepted} option calls accepted, ${counts.refused} refused unchanged; ${counts.steps} steps, all finite`);
  });
});
