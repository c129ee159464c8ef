/**
 * Property (issue 13, invariant 1): the tfjs adapter's `setWeights` takes exactly what
 * `getWeights` wrote and refuses everything else without changing anything. Random sequences
 * of valid and hostile `setWeights` inputs (wrong names, wrong shapes, wrong dtypes, NaN in
 * absmax or a map, missing and extra entries, disposed tensors, another optimizer's weights,
 * non-lists) interleaved with steps, on the cpu backend. Checked: a refused call leaves the
 * variables, `iterations`, `stateBytes()` and the `getWeights()` output identical; an accepted
 * call round-trips (`getWeights()` right after it returns the input, bit for bit); steps keep
 * the variables finite.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { NamedTensor } from '@tensorflow/tfjs-core/dist/tensor_types.js';
import fc from 'fast-check';
import * as bitopt from '../src/tfjs/index.js';
import { decodeVariableStates, encodeVariableState } from '../src/tfjs/weights.js';

const RUNS = Number(process.env.RELIABILITY_RUNS ?? 1);
const SHAPES: Record<string, number[]> = { wp_a: [5000], wp_b: [30, 10], wp_c: [4] };
const HEADER = '/bitopt/header';

/** A weight list as plain data (names, dtypes, shapes, values): comparable, and re-made as tensors at will. */
type Plain = { name: string; dtype: tf.DataType; shape: number[]; values: Float32Array | Int32Array }[];

const plain = (ws: NamedTensor[]): Plain => ws.map((w) => ({ name: w.name, dtype: w.tensor.dtype, shape: [...w.tensor.shape], values: w.tensor.dataSync().slice() as Float32Array | Int32Array }));
const tensors = (p: Plain): NamedTensor[] => p.map((w) => ({ name: w.name, tensor: tf.tensor(w.values, w.shape, w.dtype) }));

/** Reads the weights and disposes the tensors getWeights handed out. */
async function weightsOf(opt: bitopt.BitoptOptimizer): Promise<Plain> {
  const ws = await opt.getWeights();
  const out = plain(ws);
  tf.dispose(ws.map((w) => w.tensor));
  return out;
}

/** `p` with one variable's state decoded, edited by `edit` and encoded again (as a forger would). */
async function reencoded(p: Plain, edit: (st: Awaited<ReturnType<typeof decodeVariableStates>>[number]) => void): Promise<Plain> {
  const ws = tensors(p);
  const states = await decodeVariableStates(ws.slice(1));
  tf.dispose(ws.map((w) => w.tensor));
  edit(states[0]);
  const out = [ws[0], ...states.flatMap((s) => encodeVariableState(s))];
  const result = [p[0], ...plain(out.slice(1))];
  tf.dispose(out.slice(1).map((w) => w.tensor));
  return result;
}

/** The first state's first 8-bit entry (the 5000-element variable's m). */
const blockState = (st: { dict: { tensors: { states: unknown[] }[] } }) => st.dict.tensors[0].states[0] as { absmax: Float32Array; map: Float32Array };

describe('tfjs getWeights/setWeights property', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  test('property: hostile setWeights calls throw and change nothing; accepted ones round-trip; steps stay finite', { timeout: 120_000 }, async () => {
    // Another optimizer kind's weights over variables of the same names and shapes.
    const lionVars = Object.entries(SHAPES).map(([n, s]) => tf.variable(tf.fill(s, 0.5), true, n));
    const lion = bitopt.lion8bit(1e-3);
    lion.applyGradients(Object.fromEntries(lionVars.map((v) => [v.name, tf.fill(v.shape, 0.1)])));
    const lionWeights = await weightsOf(lion);
    lion.dispose();
    tf.dispose(lionVars);

    type Input = { what: string; make: (cur: Plain, old: Plain) => Promise<unknown> | unknown; valid: boolean };
    const inputs: Input[] = [
      { what: 'its own weights', make: (cur) => tensors(cur), valid: true },
      { what: 'an earlier getWeights', make: (_cur, old) => tensors(old), valid: true },
      { what: 'a data weight renamed', make: (cur) => tensors(cur.map((w, i) => (i === 2 ? { ...w, name: w.name.replace(/\/\d+$/, '/9') } : w))) , valid: false },
      { what: 'a header renamed', make: (cur) => tensors(cur.map((w, i) => (i === 1 ? { ...w, name: 'someone/else' } : w))), valid: false },
      { what: 'the state for another shape', make: async (cur) => tensors(await reencoded(cur, (st) => (st.shape = [7]))), valid: false },
      { what: 'a float32 weight as int32', make: (cur) => tensors(cur.map((w, i) => (i > 1 && w.dtype === 'float32' && !w.name.endsWith(HEADER) && i === cur.findIndex((x, k) => k > 1 && x.dtype === 'float32') ? { ...w, dtype: 'int32' as const, values: Int32Array.from(w.values) } : w))), valid: false },
      { what: 'the codes as float32 NaN', make: (cur) => tensors(cur.map((w, i) => (i === cur.findIndex((x, k) => k > 1 && x.dtype === 'int32' && !x.name.endsWith(HEADER)) ? { ...w, dtype: 'float32' as const, values: new Float32Array(w.values.length).fill(NaN) } : w))), valid: false },
      { what: 'NaN in an absmax', make: async (cur) => tensors(await reencoded(cur, (st) => (blockState(st).absmax[1] = NaN))), valid: false },
      { what: 'NaN in a map', make: async (cur) => tensors(await reencoded(cur, (st) => (blockState(st).map[3] = NaN))), valid: false },
      { what: "'iter' missing", make: (cur) => tensors(cur.slice(1)), valid: false },
      { what: 'a data weight missing', make: (cur) => tensors(cur.filter((_, i) => i !== 2)), valid: false },
      { what: 'an extra weight', make: (cur) => tensors([...cur, { name: 'junk', dtype: 'float32', shape: [2], values: new Float32Array(2) }]), valid: false },
      { what: 'a disposed tensor', make: (cur) => { const ws = tensors(cur); ws[2].tensor.dispose(); return ws; }, valid: false },
      { what: "Lion8bit's weights", make: () => tensors(lionWeights), valid: false },
      { what: 'an empty list', make: () => [], valid: false },
      { what: 'not a list', make: () => ({ iter: tf.scalar(1) }), valid: false },
    ];

    const counts = { accepted: 0, refused: 0, steps: 0, stepsRefused: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: -1, max: inputs.length - 1 }), { minLength: 1, maxLength: 6 }), async (plan) => {
        const vars = Object.entries(SHAPES).map(([n, s]) => tf.variable(tf.fill(s, 0.5), true, n));
        const opt = bitopt.adam8bit(1e-2);
        let t = 0;
        const step = () => {
          t++;
          const grads = vars.map((v) => tf.tensor(Float32Array.from({ length: v.size }, (_, i) => Math.sin(i * (0.37 + 0.01 * t)) * 0.1), v.shape));
          try {
            opt.applyGradients(Object.fromEntries(vars.map((v, i) => [v.name, grads[i]])));
            counts.steps++;
          } finally {
            tf.dispose(grads);
          }
          for (const v of vars) assert.ok(v.dataSync().every(Number.isFinite), 'a step made a variable non-finite');
        };
        try {
          step(); // every snapshot holds all three variables' state
          let old = await weightsOf(opt);
          for (const h of plan) {
            if (h < 0) {
              const before = { v: vars.map((v) => v.dataSync().slice()), it: opt.iterations, w: await weightsOf(opt) };
              try {
                step();
              } catch (e) {
                // A restored state that does not fit is refused at the step that binds it: nothing moved.
                assert.ok(e instanceof Error && !(e instanceof TypeError), String(e));
                assert.deepEqual({ v: vars.map((v) => v.dataSync().slice()), it: opt.iterations, w: await weightsOf(opt) }, before, (e as Error).message);
                counts.stepsRefused++;
              }
              if (t % 2 === 0) old = await weightsOf(opt); // "an earlier getWeights" is one or more steps old
              continue;
            }
            const input = inputs[h];
            const cur = await weightsOf(opt);
            const arg = await input.make(cur, old);
            const before = { v: vars.map((v) => v.dataSync().slice()), it: opt.iterations, bytes: opt.stateBytes(), w: cur };
            try {
              await opt.setWeights(arg as NamedTensor[]);
              assert.ok(input.valid, `accepted: ${input.what}`);
              assert.deepEqual(await weightsOf(opt), plain(arg as NamedTensor[]), `getWeights after setWeights(${input.what}) returns the input`);
              assert.deepEqual(vars.map((v) => v.dataSync().slice()), before.v, 'setWeights moves no variable');
              counts.accepted++;
            } catch (e) {
              if (e instanceof assert.AssertionError) throw e;
              assert.ok(!input.valid, `refused: ${input.what}: ${(e as Error).message}`);
              assert.ok(e instanceof Error && !(e instanceof TypeError), `${input.what}: ${String(e)}`);
              assert.deepEqual({ v: vars.map((v) => v.dataSync().slice()), it: opt.iterations, bytes: opt.stateBytes(), w: await weightsOf(opt) }, before, `${input.what}: ${(e as Error).message}`);
              counts.refused++;
            } finally {
              if (Array.isArray(arg)) tf.dispose((arg as NamedTensor[]).map((w) => w.tensor).filter((x) => !x.isDisposed));
            }
          }
        } finally {
          opt.dispose();
          tf.dispose(vars);
        }
      }),
      { numRuns: 30 * RUNS, seed: 1313 },
    );
    console.log(`# tfjs setWeights property: ${counts.accepted} accepted (round-trip), ${counts.refused} refused unchanged, ${counts.steps} steps (${counts.stepsRefused} refused unchanged)`);
    assert.ok(counts.accepted > 0 && counts.refused > 0 && counts.steps > 0, 'the harness reached every branch');
  });
});
