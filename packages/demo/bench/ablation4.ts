/**
 * Issue 14's 4-bit map ablation on real optimizer states.
 * 1. Capture: 32-bit Adam trains the task (the demo's loop); at the capture steps its m and v
 *    of every tensor Adam4bit would quantize (>= 4096 elements, not StableEmbedding) are
 *    quantized with each candidate map and layout. Errors: relative L2 of the state; for v the
 *    share of non-zeros decoded off by more than 2× or as 0; and, what the step sees, the
 *    relative L2 error and the norm ratio of the update m̂ / (sqrt(v̂) + eps).
 *    (m candidates: against the update with v as Adam4bit stores it, since exact v has zeros where
 *    a non-zero m code would step by m / eps; v candidates: with m exact; m+v: both quantized.)
 * 2. Training: the task with VariantAdam4 under the chosen variants (and 32-bit Adam) per seed.
 *   nice -n 10 node --import tsx packages/demo/bench/ablation4.ts --task mnist --capture 60,300,600
 *        [--train current,v-sqrt,...] [--seeds 1,2,3] [--backend wasm] --out results.json
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { RULES } from 'bitopt';
import { initTf, type TfBackend } from '../src/demo/backend.js';
import { createOptimizerFactory, floatCopyOptimizer, weightCopies, type OptimizerFactory } from '../src/demo/optimizers.js';
import { dequantize4, quantize4, signedMap4Candidates, unsignedMap4Candidates, type Layout4, type Map4Candidate } from '../src/demo/quant-variants.js';
import { stat } from '../src/demo/summary.js';
import { createTask, type TaskId } from '../src/demo/tasks.js';
import { trainRun } from '../src/demo/train.js';
import { VariantAdam4, type Variant4 } from '../src/demo/variant-adam.js';
import { cpuCopyBandwidthGBs } from '../src/demo/copy-bandwidth.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback?: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};

const SIGNED = signedMap4Candidates();
const UNSIGNED = unsignedMap4Candidates();
const [DE16, ZFL] = [SIGNED[0], UNSIGNED[0]];
const byName = (list: Map4Candidate[], prefix: string) => list.find((c) => c.name.startsWith(prefix))!;
const B = (blockSize: number): Layout4 => ({ blockSize });
const layoutName = (l: Layout4) => (l.float ? 'float32' : l.rank1 ? 'rank-1 (2-D), 128 blocks for 1-D' : `blocks of ${l.blockSize}`);

/** The trainable variants, by key. */
const TRAIN: Record<string, Variant4> = {
  current: { name: 'current: m DE-16, v zero-free linear, blocks 128', m: DE16, v: ZFL, mLayout: B(128), vLayout: B(128) },
  'v-sqrt': { name: 'v square-root map', m: DE16, v: byName(UNSIGNED, 'square-root'), mLayout: B(128), vLayout: B(128) },
  'v-pow3': { name: 'v power-3 map', m: DE16, v: byName(UNSIGNED, 'power map ((i+1)/16)^3'), mLayout: B(128), vLayout: B(128) },
  'v-de': { name: 'v DE-16 without zero', m: DE16, v: byName(UNSIGNED, 'DE-16 unsigned without'), mLayout: B(128), vLayout: B(128) },
  'v-rank1': { name: 'v rank-1 scale (zero-free linear)', m: DE16, v: ZFL, mLayout: B(128), vLayout: { blockSize: 128, rank1: true } },
  'v-sqrt-rank1': { name: 'v square-root map, rank-1 scale', m: DE16, v: byName(UNSIGNED, 'square-root'), mLayout: B(128), vLayout: { blockSize: 128, rank1: true } },
  'b32': { name: 'blocks of 32 (m and v)', m: DE16, v: ZFL, mLayout: B(32), vLayout: B(32) },
  'v-b32': { name: 'v blocks of 32', m: DE16, v: ZFL, mLayout: B(128), vLayout: B(32) },
  'm-de2': { name: 'm DE-16 with 2 exponent bits', m: byName(SIGNED, 'DE-16 (2 exponent'), v: ZFL, mLayout: B(128), vLayout: B(128) },
  'm-only': { name: 'only m in 4 bits (v float32)', m: DE16, v: ZFL, mLayout: B(128), vLayout: { blockSize: 128, float: true } },
  'v-only': { name: 'only v in 4 bits (m float32)', m: DE16, v: ZFL, mLayout: { blockSize: 128, float: true }, vLayout: B(128) },
  'm-lin': { name: 'm linear-16 with zero', m: byName(SIGNED, 'linear-16 with zero'), v: ZFL, mLayout: B(128), vLayout: B(128) },
};

interface ErrorRow {
  state: 'm' | 'v' | 'm+v';
  candidate: string;
  layout: string;
  step: number;
  elements: number;
  /** Sums over elements (so rows of several tensors and steps combine element-weighted). */
  sq: number;
  ref: number;
  rel: number;
  nonzero: number;
  zeroed: number;
  uSq: number;
  uRef: number;
  uNorm: number;
}

/** Accumulates the error sums of one tensor's m, v (and their quantized mq, vq) into `row`. */
function accumulate(row: ErrorRow, x: Float32Array, xq: Float32Array, m: Float32Array, v: Float32Array, mq: Float32Array, vq: Float32Array, t: number): void {
  const { betas, eps } = RULES.adam.defaults as unknown as { betas: [number, number]; eps: number };
  const [beta1, beta2] = betas;
  const c1 = 1 - beta1 ** t;
  const c2 = 1 - beta2 ** t;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - xq[i];
    row.sq += d * d;
    row.ref += x[i] * x[i];
    if (x[i] !== 0) {
      row.nonzero++;
      // Off by more than a factor of 2 (or sign lost): a mean relative error would be ruled by the tiniest values.
      const r = xq[i] / x[i];
      if (!(r >= 0.5 && r <= 2)) row.rel++;
      if (xq[i] === 0) row.zeroed++;
    }
    const u = m[i] / c1 / (Math.sqrt(v[i] / c2) + eps);
    const uq = mq[i] / c1 / (Math.sqrt(vq[i] / c2) + eps);
    row.uSq += (u - uq) ** 2;
    row.uRef += u * u;
    row.uNorm += uq * uq;
  }
  row.elements += x.length;
}

async function main(): Promise<void> {
  const out = arg('out');
  if (!out) throw new Error('ablation4: --out FILE is required');
  const taskId = arg('task', 'mnist') as TaskId;
  const task = createTask(taskId);
  const steps = Number(arg('steps', String(task.defaultSteps)));
  const captureAt = arg('capture', `${Math.round(steps / 10)},${Math.round(steps / 2)},${steps}`)!.split(',').map(Number);
  const seeds = arg('seeds', '1,2,3')!.split(',').map(Number);
  const train = arg('train', '')!.split(',').filter(Boolean);
  for (const k of train) if (!TRAIN[k]) throw new Error(`ablation4: unknown variant '${k}' (known: ${Object.keys(TRAIN).join(', ')})`);
  const backend = await initTf(arg('backend', 'wasm') as TfBackend, console.log);
  const env = {
    createdAt: new Date().toISOString(),
    command: `node --import tsx packages/demo/bench/ablation4.ts ${argv.join(' ')}`,
    machine: `${os.cpus()[0]?.model?.trim() ?? 'unknown'} × ${os.availableParallelism()}`,
    copyBandwidthGBs: Number(cpuCopyBandwidthGBs(64 << 20).toFixed(2)),
    node: process.version,
    tfBackend: backend,
  };
  console.log(`# ${env.machine}, Node ${env.node}, tfjs ${backend}; copy bandwidth ${env.copyBandwidthGBs} GB/s`);
  const doc: Record<string, unknown> = { env, task: taskId, steps, captureAt, seeds };
  const save = () => writeFileSync(out, JSON.stringify(doc, null, 1));

  // 1. Quantization error of captured states.
  const probe = task.createModel(seeds[0]);
  const shapes = probe.variables.map((v) => v.shape);
  const skip = new Set(probe.variables.flatMap((v, i) => (probe.fullPrecision.has(v) ? [i] : [])));
  probe.dispose();
  const rows = new Map<string, ErrorRow>();
  const row = (state: ErrorRow['state'], candidate: string, layout: string, step: number) => {
    const key = `${state}|${candidate}|${layout}|${step}`;
    if (!rows.has(key)) rows.set(key, { state, candidate, layout, step, elements: 0, sq: 0, ref: 0, rel: 0, nonzero: 0, zeroed: 0, uSq: 0, uRef: 0, uNorm: 0 });
    return rows.get(key)!;
  };
  const mLayouts = [B(128), B(64), B(32)];
  const vLayouts = [B(128), B(64), B(32), { blockSize: 128, rank1: true }];
  const t0 = performance.now();
  await trainRun(task, { id: 'Adam', family: 'adam', kind: 'core', bits: 32, lr: task.lr.adam }, createOptimizerFactory(), {
    steps: Math.max(...captureAt),
    seed: seeds[0],
    onStepDone: (step, opt) => {
      if (!captureAt.includes(step) || !opt.core) return;
      opt.core.stateDict().tensors.forEach((tensor, i) => {
        if (tensor.length < 4096 || skip.has(i)) return; // float32 in Adam4bit as well
        const [m, v] = tensor.states.map((e) => (e as unknown as { values: Float32Array }).values);
        const shape = shapes[i];
        const mq = new Float32Array(m.length);
        const vq = new Float32Array(v.length);
        // m candidates step with v as Adam4bit stores it (exact v has zeros where m may decode to non-zero: u = m / eps).
        const vCodec = dequantize4(quantize4(v, shape, ZFL, B(128)), shape, ZFL, new Float32Array(v.length));
        for (const c of SIGNED) {
          for (const l of mLayouts) {
            dequantize4(quantize4(m, shape, c, l), shape, c, mq);
            accumulate(row('m', c.name, layoutName(l), step), m, mq, m, vCodec, mq, vCodec, step);
          }
        }
        for (const c of UNSIGNED) {
          for (const l of vLayouts) {
            dequantize4(quantize4(v, shape, c, l), shape, c, vq);
            accumulate(row('v', c.name, layoutName(l), step), v, vq, m, v, m, vq, step);
          }
        }
        for (const k of Object.keys(TRAIN)) {
          const tv = TRAIN[k];
          dequantize4(quantize4(m, shape, tv.m, tv.mLayout), shape, tv.m, mq);
          dequantize4(quantize4(v, shape, tv.v, tv.vLayout), shape, tv.v, vq);
          accumulate(row('m+v', tv.name, '', step), v, vq, m, v, mq, vq, step);
        }
      });
      console.log(`captured step ${step} (${((performance.now() - t0) / 1e3).toFixed(0)} s)`);
    },
  });
  const errors = [...rows.values()];
  doc.errors = errors;
  save();
  console.log(errorTable(errors));

  // 2. Final loss per variant and seed, 32-bit Adam alongside.
  const finals: { variant: string; seed: number; loss: number; accuracy?: number; stateBytes: number }[] = [];
  doc.finals = finals;
  const variants = [undefined, ...train];
  for (const seed of seeds) {
    for (const k of variants) {
      if (!k && (!train.length || argv.includes('--no-baseline'))) continue;
      const name = k ? TRAIN[k].name : 'Adam 32-bit';
      const r = await trainRun(task, { id: name, family: 'adam', kind: 'core', bits: k ? 4 : 32, lr: task.lr.adam }, k ? variantFactory(TRAIN[k]) : createOptimizerFactory(), { steps, seed });
      finals.push({ variant: name, seed, loss: r.final.loss, ...(r.final.accuracy !== undefined ? { accuracy: r.final.accuracy } : {}), stateBytes: r.stateBytes });
      save();
      console.log(`${name} seed ${seed}: loss ${r.final.loss.toFixed(4)}${r.final.accuracy !== undefined ? ` acc ${r.final.accuracy}` : ''}, state ${r.stateBytes} B`);
    }
  }
  if (finals.length) console.log(finalTable(finals));
}

function variantFactory(v: Variant4): OptimizerFactory {
  return (spec, model) => {
    const params = weightCopies(model);
    const full = new Set(params.filter((_, i) => model.fullPrecision.has(model.variables[i])));
    const opt = new VariantAdam4(params, model.variables.map((x) => x.shape), v, { lr: spec.lr, fullPrecision: full });
    return floatCopyOptimizer(model, params, { step: (g) => opt.step(g), setLearningRate: (lr) => (opt.lr = lr), stateBytes: () => opt.stateBytes() });
  };
}

/** Element-weighted over all capture steps. */
export function errorTable(errors: ErrorRow[]): string {
  const out: string[] = [];
  const keys = [...new Set(errors.map((e) => `${e.state}|${e.candidate}|${e.layout}`))];
  out.push('state | candidate | layout | rel. L2 of state | non-zeros off > 2× | non-zeros → 0 | update rel. L2 | update norm ratio');
  for (const k of keys) {
    const rs = errors.filter((e) => `${e.state}|${e.candidate}|${e.layout}` === k);
    const s = (f: keyof ErrorRow) => rs.reduce((a, r) => a + (r[f] as number), 0);
    const [state, candidate, layout] = k.split('|');
    out.push(
      [state, candidate, layout, Math.sqrt(s('sq') / s('ref')).toFixed(4), `${((100 * s('rel')) / s('nonzero')).toFixed(2)}%`, `${((100 * s('zeroed')) / s('nonzero')).toFixed(2)}%`, Math.sqrt(s('uSq') / s('uRef')).toFixed(4), Math.sqrt(s('uNorm') / s('uRef')).toFixed(4)].join(' | '),
    );
  }
  return out.join('\n');
}

export function finalTable(finals: { variant: string; seed: number; loss: number; accuracy?: number }[]): string {
  const out = ['variant | seeds | loss mean ± std | Δ vs 32-bit per seed (mean ± std) | acc mean'];
  for (const name of [...new Set(finals.map((f) => f.variant))]) {
    const fs = finals.filter((f) => f.variant === name);
    const l = stat(fs.map((f) => f.loss));
    const d = fs.flatMap((f) => {
      const b = finals.find((x) => x.variant === 'Adam 32-bit' && x.seed === f.seed);
      return b ? [(100 * (f.loss - b.loss)) / b.loss] : [];
    });
    const ds = d.length ? stat(d) : undefined;
    const acc = fs.flatMap((f) => (f.accuracy !== undefined ? [f.accuracy] : []));
    out.push(
      [name, fs.map((f) => f.seed).join(','), `${l.mean.toFixed(4)} ± ${l.std.toFixed(4)}`, ds ? `${ds.mean.toFixed(2)}% ± ${ds.std.toFixed(2)}` : '-', acc.length ? stat(acc).mean.toFixed(2) : '-'].join(' | '),
    );
  }
  return out.join('\n');
}

if (process.argv[1]?.endsWith('ablation4.ts')) await main();
